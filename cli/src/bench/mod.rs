//! `tern bench produce|consume|e2e`: a load generator speaking the
//! RocketMQ 5 gRPC protocol to any endpoint (Tern, or Apache RocketMQ's
//! proxy), cheap enough per message to load a broker on the same host.
//!
//! - [`args`]: the command line.
//! - [`wire`]: connections, headers, routes, one client's Telemetry
//!   settings and heartbeats; [`transport`] and [`io`] under them: one
//!   hyper HTTP/2 connection per client, on a socket that coalesces
//!   writes.
//! - [`topics`]: the topics of a run (`--topics`), their routes, and how
//!   their queues are spread over connections and receive loops.
//! - [`plan`]: the clock of a run (warm-up, window, open-loop schedule),
//!   claims of message numbers, the stop signal.
//! - [`produce`] and [`consume`]: the load tasks, each counting into its
//!   own [`stats::Tally`], merged at the end.
//! - [`report`]: JSON and text output.
//!
//! How a run goes: look up the route of each topic at the endpoint; open
//! the producer's connections (--connections to each broker with
//! writable queues) and the consumers' (as many to each broker with
//! readable queues), each a client that sent its settings and got them back; start
//! the clock; run the load tasks until the window closes, --count is
//! reached or Ctrl-C; sample CPU at the start and end of the window; tell
//! the brokers the clients are leaving; report.

mod args;
mod consume;
mod io;
mod plan;
mod produce;
mod report;
mod stats;
mod topics;
mod transport;
mod wire;

use std::io::IsTerminal as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

pub use args::BenchArgs;
pub(crate) use args::LONG_ABOUT;
use args::Mode;
use consume::ReceiveSpec;
use plan::{Plan, Shared};
use produce::SendSpec;
use report::{Cpu, Flow, Latency, Received, Report, Settings, error_counts};
use stats::{Errors, Sample, Tally};
use tern_client::TopicName;
use topics::Layout;
use wire::{Link, Role};

/// Runs `tern bench`.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    // The load generator's connections are its own plaintext HTTP/2 ones.
    if args.conn.wants_tls() || args.conn.endpoint.tls().is_some() {
        bail!(
            "tern bench connects in plaintext only; drop --tls, --ca-file, --insecure-skip-verify and https://"
        );
    }
    // Nor does it sign its requests.
    if args.conn.wants_credentials() {
        bail!(
            "tern bench does not sign its requests; drop --access-key and --secret-key \
             (TERN_ACCESS_KEY, TERN_SECRET_KEY) and bench a broker without authentication"
        );
    }
    let mut builder = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads as usize);
        b
    };
    let runtime = builder.enable_all().build()?;
    let report = runtime.block_on(bench(&args))?;
    // Tasks still parked (aborted receives, telemetry readers) end with
    // the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    report.print(args.conn.output == crate::admin::Output::Json)
}

/// Connects to the first address of --endpoint that answers; returns the
/// address and the route of each of `topics` there.
async fn routes(
    args: &BenchArgs,
    topics: &[TopicName],
    timeout: Duration,
) -> anyhow::Result<(String, Layout)> {
    let text = args.conn.endpoint.to_string();
    let mut last = None;
    for address in text.split(';') {
        match wire::connect(address, timeout).await {
            Ok(client) => {
                let routes = topics::routes(&client, address, topics, timeout).await?;
                return Ok((address.to_owned(), Layout { routes }));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no endpoint given")))
}

async fn bench(args: &BenchArgs) -> anyhow::Result<Report> {
    let timeout = Duration::from_secs(args.conn.timeout);
    let mode = args.mode;
    if let Some(pid) = args.broker_pid {
        stats::proc_cpu(pid)
            .and_then(|_| stats::proc_rss_kib(pid))
            .with_context(|| format!("reading /proc/{pid} for --broker-pid {pid}"))?;
    }
    let topics = topics::names(&args.topic, args.topics)?;
    let (endpoint, mut layout) = routes(args, &topics, timeout).await?;
    for (topic, route) in topics.iter().zip(&mut layout.routes) {
        if let Some(n) = args.queues {
            route.limit_writable(n as usize);
        }
        if mode.produces() && route.writable.is_empty() {
            bail!("topic {topic} has no writable queue at {endpoint}");
        }
        if mode.consumes() && route.readable.is_empty() {
            bail!("topic {topic} has no readable queue at {endpoint}");
        }
    }

    let incidents = Arc::new(Mutex::new(Errors::default()));
    let connections = args.connections as usize;
    // The clients, each having sent its settings and got them back.
    let mut producers: Vec<(String, Link)> = Vec::new();
    if mode.produces() {
        for address in layout.writable_addresses() {
            for _ in 0..connections {
                let link = Link::open(
                    &address,
                    producers.len(),
                    Role::Producer,
                    &topics,
                    timeout,
                    Arc::clone(&incidents),
                )
                .await?;
                producers.push((address.clone(), link));
            }
        }
    }
    let mut consumers: Vec<Link> = Vec::new();
    if mode.consumes() {
        for address in layout.readable_addresses() {
            for _ in 0..connections {
                let role = Role::Consumer {
                    group: args.group.clone(),
                    long_polling: args.long_polling,
                };
                let link = Link::open(
                    &address,
                    consumers.len(),
                    role,
                    &topics,
                    timeout,
                    Arc::clone(&incidents),
                )
                .await?;
                consumers.push(link);
            }
        }
    }

    let plan = Plan::new(
        args.warmup,
        args.measured_time(),
        args.count,
        if mode.produces() { args.rate } else { 0.0 },
    );
    let shared = Arc::new(Shared::new(plan));
    let window_start = shared.plan.window_start;
    let broker_pid = args.broker_pid;
    let first_sample: JoinHandle<Sample> = tokio::spawn(async move {
        tokio::time::sleep_until(window_start.into()).await;
        Sample::take(broker_pid)
    });
    let progress = (!args.no_progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let task = tokio::spawn(progress(mode, Arc::clone(&shared), bar.clone()));
        (bar, task)
    });
    // Ctrl-C ends the run and reports; a second one exits at once.
    let interrupt = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return false;
            }
            shared.stop();
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            });
            true
        })
    };

    // Senders: one driver per producer connection, over the queues of
    // every topic on its broker.
    let send_spec = Arc::new(SendSpec::new(
        &topics,
        &args.tag,
        args.size,
        args.batch,
        args.inflight,
        timeout,
    ));
    let mut senders = Vec::new();
    for (i, (address, link)) in producers.iter().enumerate() {
        senders.push(tokio::spawn(produce::drive(
            link.ident.clone(),
            layout.send_targets(address),
            i,
            Arc::clone(&send_spec),
            Arc::clone(&shared),
        )));
    }
    // Receivers: each takes a share of the (topic, broker) pairs, over
    // the consumer connections to each broker in turn.
    let receive_spec = Arc::new(ReceiveSpec {
        group: args.group.clone(),
        topics: topics.clone(),
        batch: args.receive_batch,
        invisible: args.invisible,
        long_polling: args.long_polling,
        timeout,
        e2e: mode == Mode::E2e,
        count: if mode == Mode::Consume {
            args.count
        } else {
            None
        },
    });
    let mut receivers = Vec::new();
    if mode.consumes() {
        let brokers = layout.readable_addresses().len().max(1);
        let shares = layout.receive_shares(args.receivers as usize);
        for (r, share) in shares.into_iter().enumerate() {
            let sources = share
                .into_iter()
                .map(|target| {
                    let links: Vec<&Link> = consumers
                        .iter()
                        .filter(|l| l.address == target.read.address)
                        .collect();
                    let link = links[(r / brokers) % links.len()];
                    (link.ident.clone(), target)
                })
                .collect();
            receivers.push(tokio::spawn(consume::receive_loop(
                sources,
                Arc::clone(&receive_spec),
                Arc::clone(&shared),
            )));
        }
    }

    // Produce: the drivers end by themselves. Consume: the window's end
    // (or --count, or Ctrl-C) stops the receivers. E2e: once the
    // producer is done, the receivers stop when they have every measured
    // message it sent, or after a grace period.
    let mut sent = Tally::new();
    for s in senders {
        sent.merge(&s.await.context("a sending task failed")?);
    }
    let producer_end = Instant::now();
    match mode {
        Mode::Produce => shared.stop(),
        Mode::Consume => {
            if let Some(end) = shared.plan.end {
                let mut stop = shared.stop_signal();
                tokio::select! {
                    _ = tokio::time::sleep_until(end.into()) => shared.stop(),
                    _ = stop.wait_for(|s| *s) => {}
                }
            } else {
                let _ = shared.stop_signal().wait_for(|s| *s).await;
            }
        }
        Mode::E2e => {
            let grace = args.long_polling.max(Duration::from_secs(5)) + timeout;
            let give_up = producer_end + grace;
            while !shared.stopped()
                && shared.received_measured.load(Ordering::Relaxed) < sent.messages
                && Instant::now() < give_up
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            shared.stop();
        }
    }
    let mut received = Tally::new();
    for r in receivers {
        received.merge(&r.await.context("a receiving task failed")?);
    }
    let last_sample = Sample::take(args.broker_pid);
    let first_sample = if first_sample.is_finished() {
        first_sample.await.ok()
    } else {
        first_sample.abort();
        None
    };
    let interrupted = interrupt.is_finished() && interrupt.await.unwrap_or(false);
    if let Some((bar, task)) = progress {
        task.abort();
        bar.finish_and_clear();
    }
    for (_, link) in producers {
        link.close().await;
    }
    for link in consumers {
        link.close().await;
    }

    // The measured window: from the end of the warm-up to the last
    // measured message, but at least to the end of the window (or the
    // interruption) when the run was time-bound.
    let stop_at = shared.stop_at();
    let mut window_end = window_start;
    let mut extend = |t: Option<Instant>| {
        if let Some(t) = t {
            window_end = window_end.max(t);
        }
    };
    match mode {
        Mode::Produce | Mode::E2e => {
            extend(sent.last);
            extend(match (shared.plan.end, interrupted) {
                (Some(end), true) => stop_at.map(|s| s.min(end)),
                (Some(end), false) => Some(end.min(producer_end)),
                (None, true) => stop_at,
                (None, false) => None,
            });
            if mode == Mode::E2e {
                extend(received.last);
            }
        }
        Mode::Consume => extend(stop_at),
    }
    let elapsed = window_end.saturating_duration_since(window_start);

    let mut errors = sent.errors.clone();
    errors.merge(&received.errors);
    errors.merge(&incidents.lock().unwrap_or_else(|e| e.into_inner()));
    let headline = if mode == Mode::Produce {
        &sent
    } else {
        &received
    };
    let main = Flow::new(headline.messages, headline.bytes, elapsed);
    let messages = headline.messages;
    let s = args;
    Ok(Report {
        mode: mode.name(),
        endpoint,
        topic: args.topic.to_string(),
        topics: topics.len(),
        group: mode.consumes().then(|| args.group.to_string()),
        brokers: if mode.produces() {
            layout.writable_addresses().len()
        } else {
            layout.readable_brokers()
        },
        queues: if mode.produces() {
            layout.writable_queues()
        } else {
            layout.readable_queues()
        },
        settings: Settings {
            size: s.size,
            batch: s.batch,
            inflight: s.inflight,
            connections: s.connections,
            rate: s.rate,
            receivers: s.receivers,
            receive_batch: s.receive_batch,
            invisible_s: s.invisible.as_secs_f64(),
            long_polling_s: s.long_polling.as_secs_f64(),
            warmup_s: s.warmup.as_secs_f64(),
            duration_s: s.measured_time().map(|d| d.as_secs_f64()),
            count: s.count,
            threads: s.threads,
            tag: s.tag.clone(),
        },
        interrupted,
        elapsed_s: report::round3(elapsed.as_secs_f64()),
        messages,
        msg_per_s: report::round3(main.msg_per_s),
        mib_per_s: report::round3(main.mib_per_s),
        sent: mode
            .produces()
            .then(|| Flow::new(sent.messages, sent.bytes, elapsed)),
        received: mode.consumes().then(|| Received {
            flow: Flow::new(received.messages, received.bytes, elapsed),
            stale: received.stale,
            empty_receives: received.empty_receives,
            missing: (mode == Mode::E2e).then(|| sent.messages.saturating_sub(received.messages)),
        }),
        send_latency_us: Latency::of(&sent.latency),
        e2e_latency_us: Latency::of(&received.e2e),
        error_count: errors.total(),
        errors: error_counts(&errors),
        warmup_errors: sent.warmup_errors + received.warmup_errors,
        cpu: Cpu::between(first_sample, last_sample, messages, args.broker_pid),
    })
}

/// Writes a progress line to standard error once a second, overwriting
/// the previous one, until aborted.
async fn progress(mode: Mode, shared: Arc<Shared>, bar: ProgressBar) {
    bar.set_style(
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let live = &shared.live;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let (mut sent0, mut received0) = (0u64, 0u64);
    let mut at0 = Instant::now();
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let dt = now.saturating_duration_since(at0).as_secs_f64().max(1e-3);
        let sent = live.sent.load(Ordering::Relaxed);
        let received = live.received.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let phase = if shared.plan.end.is_some_and(|end| now >= end) {
            "finishing".to_owned()
        } else if now < shared.plan.window_start {
            format!(
                "warm-up {:.0}s",
                now.saturating_duration_since(shared.plan.t0).as_secs_f64()
            )
        } else {
            format!(
                "measuring {:.0}s",
                now.saturating_duration_since(shared.plan.window_start)
                    .as_secs_f64()
            )
        };
        let mut line = format!("bench {} {phase}", mode.name());
        if mode.produces() {
            line.push_str(&format!(
                "  sent {sent} ({:.0} msg/s)",
                (sent - sent0) as f64 / dt
            ));
        }
        if mode.consumes() {
            line.push_str(&format!(
                "  received {received} ({:.0} msg/s)",
                (received - received0) as f64 / dt
            ));
        }
        line.push_str(&format!("  errors {errors}"));
        bar.set_message(line);
        bar.tick();
        (sent0, received0, at0) = (sent, received, now);
    }
}
