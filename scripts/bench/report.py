#!/usr/bin/env python3
"""Helper of scripts/bench-compare (standard library only).

  report.py machine --data-root DIR [--set KEY=VALUE ...]
      One JSON object with the machine's facts: CPU model and cores, memory,
      kernel, the file system of DIR, and its limits measured now (buffered
      sequential write bandwidth, fdatasync latency of 4 KiB appends), and
      the loopback's (TCP throughput over 127.0.0.1, round trip of a 64-byte
      ping-pong), a few seconds at most.
  report.py record --results FILE [--bench JSON] [--fill JSON] [--sdk JSON] [--set KEY=VALUE ...]
      Appends one line (one run of one case on one system) to FILE.
  report.py table FILE [--out MD] [--command TEXT]
      The medians over the repeats of each case and system as a Markdown
      table, with the ratio Tern/Apache; the many-topic cases against
      produce-async (one topic) on the same system; the Go SDK's cross-check
      against tern bench; --out also writes the machine facts and the exact
      commands, for docs/benchmarks.md.

`tern bench --output json` fields are looked up by name patterns (see
METRICS below), so renamed or nested fields only need a pattern here.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time


# ---------------------------------------------------------------- helpers

def parse_value(text):
    """KEY=VALUE values: JSON when they parse as JSON, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(items):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"report.py: --set wants KEY=VALUE, not {item!r}")
        out[key] = parse_value(value)
    return out


def read_json_file(path):
    """(object, None) or (None, why)."""
    if not path:
        return None, None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return None, f"cannot read {path}: {e}"
    text = text.strip()
    if not text:
        return None, "no output"
    try:
        return json.loads(text), None
    except ValueError:
        # The last line may be the object when something printed before it.
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line), None
                except ValueError:
                    break
        return None, "not JSON: " + text[:300]


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


# ---------------------------------------------------------------- machine

def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def mount_of(path):
    """(mount point, device, fs type) holding path, from /proc/mounts."""
    real = os.path.realpath(path)
    best = ("/", "?", "?")
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                dev, mnt, fstype = parts[0], parts[1], parts[2]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                    best = (mnt, dev, fstype)
    except OSError:
        pass
    return best


def measure_disk(root, seq_seconds=2.0, seq_max_mib=512, sync_seconds=2.0, sync_max=2000):
    """Buffered sequential write then one fdatasync; then 4 KiB appends each
    followed by fdatasync. Bounded in time (a few seconds in all)."""
    d = tempfile.mkdtemp(prefix="bench-compare-disk-", dir=root)
    out = {}
    try:
        chunk = os.urandom(1 << 20)
        path = os.path.join(d, "seq")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        written = 0
        t0 = time.perf_counter()
        while written < seq_max_mib and time.perf_counter() - t0 < seq_seconds:
            os.write(fd, chunk)
            written += 1
        os.fdatasync(fd)
        t1 = time.perf_counter()
        os.close(fd)
        os.unlink(path)
        out["seq_write_mib"] = written
        out["seq_write_mib_per_s"] = round(written / (t1 - t0), 1)

        block = os.urandom(4096)
        path = os.path.join(d, "sync")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        lat = []
        t0 = time.perf_counter()
        while len(lat) < sync_max and time.perf_counter() - t0 < sync_seconds:
            s = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - s) * 1e6)
        os.close(fd)
        lat.sort()
        out["fdatasync_4k_count"] = len(lat)
        out["fdatasync_4k_us_p50"] = round(percentile(lat, 0.50), 1)
        out["fdatasync_4k_us_p99"] = round(percentile(lat, 0.99), 1)
        out["fdatasync_4k_us_mean"] = round(sum(lat) / len(lat), 1)
        out["fdatasync_per_s"] = round(len(lat) / (sum(lat) / 1e6), 1)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out


def measure_loopback(stream_seconds=1.0, pingpong_seconds=1.0, size=64):
    """TCP over 127.0.0.1: one connection's throughput (1 MiB writes,
    read by a thread), then round trips of a `size`-byte ping-pong with
    TCP_NODELAY. Python's own cost is in both: a floor for latency and a
    lower bound for throughput, not the kernel's exact limits."""
    out = {}

    def serve(listener, echo):
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    return
                if echo:
                    conn.sendall(data)

    def pair(echo):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        t = threading.Thread(target=serve, args=(listener, echo), daemon=True)
        t.start()
        client = socket.create_connection(listener.getsockname())
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return listener, client, t

    listener, client, t = pair(False)
    chunk = b"x" * (1 << 20)
    sent = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < stream_seconds:
        client.sendall(chunk)
        sent += len(chunk)
    client.shutdown(socket.SHUT_WR)
    t.join(10)
    t1 = time.perf_counter()
    client.close()
    listener.close()
    out["tcp_stream_mib_per_s"] = round(sent / 2**20 / (t1 - t0), 1)

    listener, client, t = pair(True)
    msg = b"p" * size
    lat = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < pingpong_seconds:
        s = time.perf_counter()
        client.sendall(msg)
        got = 0
        while got < size:
            data = client.recv(size - got)
            if not data:
                break
            got += len(data)
        lat.append((time.perf_counter() - s) * 1e6)
    client.close()
    t.join(10)
    listener.close()
    lat.sort()
    out["tcp_rtt_bytes"] = size
    out["tcp_rtt_count"] = len(lat)
    out["tcp_rtt_us_p50"] = round(percentile(lat, 0.50), 1)
    out["tcp_rtt_us_p99"] = round(percentile(lat, 0.99), 1)
    out["tcp_round_trips_per_s"] = round(len(lat) / (sum(lat) / 1e6), 1)
    return out


def cmd_machine(a):
    mnt, dev, fstype = mount_of(a.data_root)
    try:
        load = open("/proc/loadavg", encoding="utf-8").read().split()[:3]
    except OSError:
        load = []
    facts = {
        "type": "machine",
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "mem_gib": mem_total_gib(),
        "kernel": platform.release(),
        "data_root": os.path.realpath(a.data_root),
        "fs": {"mount": mnt, "device": dev, "type": fstype},
        "loadavg_at_start": [float(x) for x in load],
        "network": "clients and brokers on this machine, over loopback (127.0.0.1); "
                   "the load generator shares the cores with the broker",
    }
    if not a.no_disk:
        facts["disk"] = measure_disk(a.data_root)
    if not a.no_loopback:
        try:
            facts["loopback"] = measure_loopback()
        except OSError as e:
            facts["loopback"] = {"error": str(e)}
    facts.update(parse_sets(a.set))
    print(json.dumps(facts, sort_keys=False))


# ---------------------------------------------------------------- record

def cmd_record(a):
    rec = {"type": "run"}
    rec.update(parse_sets(a.set))
    for name, path in (("bench", a.bench), ("fill", a.fill), ("sdk", a.sdk)):
        obj, why = read_json_file(path)
        if path:
            rec[name] = obj
            if why:
                rec[name + "_error"] = why
    with open(a.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


# ---------------------------------------------------------------- table

def flatten(obj, prefix=""):
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}.{i}"))
    else:
        out[prefix] = obj
    return out


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def find(flat, must, leaf=None, avoid=()):
    """First numeric value whose lower-cased path contains every word of
    `must`, none of `avoid`, and (if given) whose last part is one of `leaf`."""
    for path, v in flat.items():
        if not is_num(v):
            continue
        p = path.lower()
        if any(w not in p for w in must) or any(w in p for w in avoid):
            continue
        if leaf is not None and p.rsplit(".", 1)[-1] not in leaf:
            continue
        return path, v
    return None, None


def latency_ms(flat, kind, pct):
    """A latency percentile in milliseconds; kind is 'send' or 'e2e'."""
    leaves = {"p50": ("p50", "p50_us", "p50_ms"),
              "p99": ("p99", "p99_us", "p99_ms"),
              "p999": ("p999", "p99_9", "p99.9", "p999_us", "p999_ms")}[pct]
    for must in ((kind, "lat"), (kind,)):
        path, v = find(flat, must, leaf=leaves, avoid=("error",))
        if path is None:
            # flat keys like send_latency_p50_us
            path, v = find(flat, must + (pct,), avoid=("error",))
        if path is not None:
            p = path.lower()
            if "_ns" in p or p.endswith("ns"):
                return v / 1e6
            if "_ms" in p or p.endswith("ms"):
                return float(v)
            return v / 1e3  # microseconds, the bench's unit
    return None


# Fields of `tern bench --output json` (cli/src/bench/report.rs), looked up
# first; the patterns after them only guard against renames.
EXACT = {
    "msg_per_s": "msg_per_s",
    "messages": "messages",
    "send": "send_latency_us",
    "e2e": "e2e_latency_us",
    "broker_cpu": "cpu.broker_us_per_msg",
    "client_cpu": "cpu.bench_us_per_msg",
    "broker_rss_end_kib": "cpu.broker_rss_end_kib",
    "errors": "error_count",
    "missing": "received.missing",
}


def exact(flat, name):
    v = flat.get(EXACT[name])
    return v if is_num(v) else None


def metrics(rec):
    """The figures of one run shown in the table."""
    bench = rec.get("bench")
    flat = flatten(bench) if isinstance(bench, dict) else {}
    m = {}
    m["msg_per_s"] = exact(flat, "msg_per_s")
    if m["msg_per_s"] is None:
        _, m["msg_per_s"] = find(flat, ("msg_per_s",), avoid=("error",))
    m["messages"] = exact(flat, "messages")
    kind = "e2e" if rec.get("mode") == "e2e" else ("send" if rec.get("mode") == "produce" else None)
    for pct in ("p50", "p99", "p999"):
        v = flat.get(f"{EXACT[kind]}.{pct}") if kind else None
        m[pct] = v / 1e3 if is_num(v) else (latency_ms(flat, kind, pct) if kind else None)
    m["broker_cpu"] = exact(flat, "broker_cpu")
    if m["broker_cpu"] is None:
        _, m["broker_cpu"] = find(flat, ("broker", "cpu", "per_m"))
    m["client_cpu"] = exact(flat, "client_cpu")
    if m["client_cpu"] is None:
        _, m["client_cpu"] = find(flat, ("cpu", "per_m"), avoid=("broker",))
    m["missing"] = exact(flat, "missing")
    errors = exact(flat, "errors")
    if errors is None:
        errors = flat.get("errors")
    if not is_num(errors):
        _, errors = find(flat, ("error",), leaf=("total", "errors_total", "error_count"),
                         avoid=("warmup",))
    if not is_num(errors):
        nums = [v for p, v in flat.items()
                if p.lower().startswith("errors") and is_num(v)
                and p.lower().rsplit(".", 1)[-1] in ("count", "n")]
        errors = sum(nums) if nums else (0 if isinstance(bench, dict) and "errors" in bench else None)
    m["errors"] = errors
    rss = exact(flat, "broker_rss_end_kib")
    if rss is None:
        rss = rec.get("end_rss_kib")
    m["rss_mib"] = rss / 1024 if is_num(rss) else None
    return m


def fmt(v, digits=0):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"×{r:.2f}" if r >= 0.1 else f"×{r:.2g}"


def median(values):
    values = [v for v in values if is_num(v)]
    return statistics.median(values) if values else None


COLUMNS = [  # key, header, digits
    ("msg_per_s", "msg/s", 0),
    ("p50", "p50 ms", 2),
    ("p99", "p99 ms", 2),
    ("p999", "p99.9 ms", 2),
    ("broker_cpu", "broker CPU µs/msg", 1),
    ("client_cpu", "client CPU µs/msg", 1),
    ("rss_mib", "broker RSS MiB", 0),
    ("errors", "errors", 0),
]


def load(path):
    machine, runs = None, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                print(f"report.py: {path}:{n} is not JSON, skipped", file=sys.stderr)
                continue
            if rec.get("type") == "machine":
                machine = rec
            elif rec.get("type") == "run":
                runs.append(rec)
    return machine, runs


def ordered(values):
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def load_table(runs):
    cases = ordered(r["case"] for r in runs if r.get("mode") not in (None, "", "none"))
    systems = ordered(r["system"] for r in runs)
    lines = ["| case | system | runs | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "---|" * (3 + len(COLUMNS))]
    for case in cases:
        med = {}
        for system in systems:
            rs = [r for r in runs if r["case"] == case and r["system"] == system]
            ok = [r for r in rs if r.get("ok")]
            if not rs:
                continue
            ms = [metrics(r) for r in ok]
            med[system] = {k: median([m[k] for m in ms]) for k, _, _ in COLUMNS}
            cells = [fmt(med[system][k], d) for k, _, d in COLUMNS]
            lines.append(f"| {case} | {system} | {len(ok)}/{len(rs)} | " + " | ".join(cells) + " |")
        if "tern" in med and "apache" in med:
            cells = [ratio(med["tern"][k], med["apache"][k]) if k != "errors" else ""
                     for k, _, _ in COLUMNS]
            lines.append(f"| {case} | Tern/Apache | | " + " | ".join(cells) + " |")
    return lines if cases else []


def startup_table(runs):
    systems = ordered(r["system"] for r in runs)
    lines = ["| system | starts | start-to-serving s (median, min–max) | idle broker RSS MiB "
             "| idle name server RSS MiB | topic+group setup s | stop s |",
             "|---|---|---|---|---|---|---|"]
    for system in systems:
        rs = [r for r in runs if r["system"] == system and is_num(r.get("serving_s"))]
        if not rs:
            continue
        serving = [r["serving_s"] for r in rs]
        idle = median([r.get("idle_rss_kib") for r in rs])
        ns = median([r.get("namesrv_idle_rss_kib") for r in rs])
        setup = median([r.get("setup_s") for r in rs])
        # Many topics make a stop longer: those are in the many-topic table.
        stop = median([r.get("stop_s") for r in rs if not str(r.get("case", "")).startswith("topics-")])
        lines.append(
            f"| {system} | {len(rs)} | {median(serving):.2f} ({min(serving):.2f}–{max(serving):.2f}) "
            f"| {fmt(idle / 1024 if idle else None)} | {fmt(ns / 1024 if ns else None)} "
            f"| {fmt(setup, 2)} | {fmt(stop, 2)} |")
    return lines if len(lines) > 2 else []


def machine_lines(m):
    if not m:
        return ["- (no machine record in the results file)"]
    out = [f"- CPU: {m.get('cpu_model')}, {m.get('cores')} cores; memory {m.get('mem_gib')} GiB; "
           f"Linux {m.get('kernel')}"]
    fs = m.get("fs") or {}
    disk = m.get("disk") or {}
    line = f"- Data directories under {m.get('data_root')}: {fs.get('type')} on {fs.get('device')}"
    if disk:
        line += (f"; buffered sequential write {disk.get('seq_write_mib_per_s')} MiB/s "
                 f"({disk.get('seq_write_mib')} MiB then fdatasync); 4 KiB append + fdatasync "
                 f"p50 {disk.get('fdatasync_4k_us_p50')} µs, p99 {disk.get('fdatasync_4k_us_p99')} µs "
                 f"(≈{disk.get('fdatasync_per_s')} fdatasync/s, {disk.get('fdatasync_4k_count')} samples)")
    out.append(line)
    out.append(f"- Network: {m.get('network')}")
    lo = m.get("loopback") or {}
    if lo.get("tcp_stream_mib_per_s") is not None:
        out.append(f"- Loopback (measured by Python, whose own cost is included: the kernel does at "
                   f"least this well): one TCP "
                   f"connection carries {lo.get('tcp_stream_mib_per_s')} MiB/s; a "
                   f"{lo.get('tcp_rtt_bytes')}-byte ping-pong round trip takes p50 "
                   f"{lo.get('tcp_rtt_us_p50')} µs, p99 {lo.get('tcp_rtt_us_p99')} µs "
                   f"(≈{lo.get('tcp_round_trips_per_s')} round trips/s, {lo.get('tcp_rtt_count')} samples)")
    elif lo.get("error"):
        out.append(f"- Loopback: not measured ({lo['error']})")
    out.append(f"- Load average when the run began: {m.get('loadavg_at_start')}")
    for key, label in (("tern_version", "Tern"), ("git_commit", "Tern commit (HEAD of the work tree)"),
                       ("apache_version", "Apache RocketMQ"), ("java_version", "Java"),
                       ("apache_proxy_jvm", "Apache proxy+broker JVM options"),
                       ("apache_namesrv_jvm", "Apache name server JVM options")):
        if m.get(key):
            out.append(f"- {label}: `{m[key]}`" if "jvm" in key else f"- {label}: {m[key]}")
    return out


def failures(runs):
    out = []
    for r in runs:
        where = f"- {r.get('case')} / {r.get('system')} / repeat {r.get('repeat')}: "
        if not r.get("ok"):
            out.append(where + f"{r.get('error') or r.get('bench_error') or 'failed'} "
                       f"(logs: {r.get('logdir')})")
            continue
        m = metrics(r)
        bench = r.get("bench") if isinstance(r.get("bench"), dict) else {}
        said = []
        if m["errors"]:
            kinds = ", ".join(f"{e.get('operation')} {e.get('name')} ×{e.get('count')}"
                              for e in bench.get("errors", []) if isinstance(e, dict))
            said.append(f"{m['errors']} errors ({kinds})" if kinds else f"{m['errors']} errors")
        if m["missing"]:
            said.append(f"{m['missing']} sent messages not received")
        if bench.get("interrupted"):
            said.append("interrupted before the end")
        if said:
            out.append(where + "; ".join(said))
    return out


def many_topics_table(runs):
    cases = ordered(r["case"] for r in runs if str(r.get("case", "")).startswith("topics-"))
    if not cases:
        return []
    systems = ordered(r["system"] for r in runs)

    def med(case, system, key="msg_per_s"):
        ok = [r for r in runs if r["case"] == case and r["system"] == system and r.get("ok")]
        return median([metrics(r)[key] for r in ok])

    lines = ["| case | system | topics x queues | topics created in s | msg/s | produce-async msg/s "
             "| against one topic | send p99 ms (one topic) | stop s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for case in cases:
        for system in systems:
            rs = [r for r in runs if r["case"] == case and r["system"] == system]
            if not rs:
                continue
            many, one = med(case, system), med("produce-async", system)
            shape = f"{rs[0].get('topics', '?')} x {rs[0].get('topic_queues', '?')}"
            setup = median([r.get("topics_setup_s") for r in rs])
            r_ = ratio(many, one)
            if case == "topics-10000x1" and many is not None and one:
                r_ += " (goal met)" if many / one >= 0.85 else " (goal not met)"
            if one is None:
                r_ = "— (produce-async not in this run)"
            p99 = f"{fmt(med(case, system, 'p99'), 2)} ({fmt(med('produce-async', system, 'p99'), 2)})"
            stop = median([r.get("stop_s") for r in rs])
            lines.append(f"| {case} | {system} | {shape} | {fmt(setup, 1)} | {fmt(many)} | {fmt(one)} "
                         f"| {r_} | {p99} | {fmt(stop, 1)} |")
    return lines


def crosscheck_table(runs):
    rs = [r for r in runs if r.get("case") == "crosscheck-go"]
    if not rs:
        return []
    lines = ["| system | runs | Go SDK msg/s | tern bench msg/s | tern bench / SDK | Go SDK send p50 / p99 ms "
             "| tern bench send p50 / p99 ms | broker CPU µs/msg, SDK / tern bench "
             "| client CPU µs/msg, SDK / tern bench |",
             "|---|---|---|---|---|---|---|---|---|"]
    for system in ordered(r["system"] for r in rs):
        mine = [r for r in rs if r["system"] == system]
        ok = [r for r in mine if r.get("ok")]
        sdk = [r.get("sdk") for r in ok if isinstance(r.get("sdk"), dict)]
        ms = [metrics(r) for r in ok]
        s_rate = median([x.get("msg_per_s") for x in sdk])
        b_rate = median([m["msg_per_s"] for m in ms])
        lines.append(
            f"| {system} | {len(ok)}/{len(mine)} | {fmt(s_rate)} | {fmt(b_rate)} | {ratio(b_rate, s_rate)} "
            f"| {fmt(median([x.get('send_p50_ms') for x in sdk]), 2)} / "
            f"{fmt(median([x.get('send_p99_ms') for x in sdk]), 2)} "
            f"| {fmt(median([m['p50'] for m in ms]), 2)} / {fmt(median([m['p99'] for m in ms]), 2)} "
            f"| {fmt(median([x.get('broker_us_per_msg') for x in sdk]), 1)} / "
            f"{fmt(median([m['broker_cpu'] for m in ms]), 1)} "
            f"| {fmt(median([x.get('cpu_us_per_msg') for x in sdk]), 1)} / "
            f"{fmt(median([m['client_cpu'] for m in ms]), 1)} |")
    return lines


def cmd_table(a):
    machine, runs = load(a.results)
    if not runs:
        sys.exit(f"report.py: no runs in {a.results}")
    body = []
    lt = load_table(runs)
    if lt:
        body += ["Medians over the repeats of each case (runs: succeeded/started). Latency is "
                 "the send latency for produce cases and the end-to-end latency for e2e cases; "
                 "RSS is the broker's after the run (for Apache the proxy JVM, broker embedded; "
                 "name server apart). Tern/Apache: the ratio of the medians.", ""] + lt + [""]
    st = startup_table(runs)
    if st:
        systems = ordered(r["system"] for r in runs)
        how = []
        if "tern" in systems:
            how.append("Tern: `tern standalone` launched until `tern topic list` answers; setup: "
                       "`tern topic create` and `tern group create`")
        if "apache" in systems:
            how.append("Apache: name server launched, then the proxy in local mode, until the gRPC "
                       "port accepts and the proxy prints its start-up line; setup: `mqadmin "
                       "updateTopic` and `updateSubGroup`, a JVM each")
        body += ["Start-up, over every fresh start of the run (" + "; ".join(how) +
                 "; stop: SIGTERM until the process exits, many-topic runs left out; idle RSS: "
                 "after the setup).", ""] + st + [""]
    mt = many_topics_table(runs)
    if mt:
        body += ["Many topics against one topic: each many-topic case's median msg/s on a "
                 "system over that system's produce-async median (one topic of 8 queues, the "
                 "same 64 sends in flight, 1 KiB, async flush). Issue 11 asks that 10,000 "
                 "topics x 1 queue lose at most 15 % (a ratio of 0.85 or more). Stop: SIGTERM "
                 "until the broker (Apache: the proxy) exited, after the run; not in the start-up "
                 "table's stop column.", ""] + mt + [""]
    cc = crosscheck_table(runs)
    if cc:
        body += ["Cross-check (crosscheck-go): the official Go SDK's producer "
                 "(rocketmq-clients/golang, 64 Send calls in flight from 64 goroutines, 1 KiB, the "
                 "same warm-up and duration) and `tern bench produce` at the same settings, one "
                 "after the other on the same fresh system (the SDK first in odd repeats, second "
                 "in even ones); medians. Broker CPU: over each client's measured window, per "
                 "message it sent (for the SDK from /proc in 10 ms ticks). Client CPU: the client "
                 "process's. Where the SDK sends less at a similar broker cost per message, the "
                 "SDK, not the broker, is the limit.",
                 ""] + cc + [""]
    fl = failures(runs)
    if fl:
        body += ["Failed runs and runs with errors:", ""] + fl + [""]
    print("\n".join(body))
    if a.out:
        doc = [f"### Tern and Apache RocketMQ {machine.get('apache_version', '') if machine else ''} "
               f"side by side ({(machine or {}).get('time', '')[:10]})", ""]
        doc += machine_lines(machine) + [""]
        doc += ["Commands:", "", "```sh"]
        command = a.command or (machine or {}).get("command")
        if command:
            doc.append(command)
        warm = next((r["prewarm_cmd"] for r in runs if r.get("prewarm_cmd")), None)
        if warm:
            doc.append(f"# before each measured case, unmeasured (pre-warm): {warm}")
        for case in ordered(r["case"] for r in runs):
            r = next(r for r in runs if r["case"] == case)
            for key in ("fill_cmd", "sdk_cmd", "bench_cmd"):
                if r.get(key):
                    doc.append(f"# {case} ({r.get('flush')} flush): {r[key]}")
        if any(r.get("system") == "apache" for r in runs):
            doc.append("# Apache: NamesrvStartup, then ProxyStartup -pm local (broker embedded) with "
                       "scripts/bench/apache/{namesrv.properties,broker.conf,proxy.json}; topic and "
                       "group by mqadmin updateTopic -r 8 -w 8 and updateSubGroup; the many "
                       "topics by scripts/bench/apache/CreateTopics.java")
        doc += ["```", ""]
        doc += body
        if any(r.get("system") == "apache" for r in runs):
            doc += ["Apache's JVMs start cold: the JIT compiles the hot paths during the first "
                    "seconds under load, so with a short --warmup its figures include that work "
                    "(broker CPU per message, latency).", ""]
        with open(a.out, "w", encoding="utf-8") as f:
            f.write("\n".join(doc).rstrip() + "\n")
        print(f"wrote {a.out}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("machine")
    m.add_argument("--data-root", required=True)
    m.add_argument("--no-disk", action="store_true")
    m.add_argument("--no-loopback", action="store_true")
    m.add_argument("--set", action="append")
    r = sub.add_parser("record")
    r.add_argument("--results", required=True)
    r.add_argument("--bench")
    r.add_argument("--fill")
    r.add_argument("--sdk")
    r.add_argument("--set", action="append")
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("--out")
    t.add_argument("--command")
    a = p.parse_args()
    {"machine": cmd_machine, "record": cmd_record, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
