"""Building blocks of the scenario tests (tests/scenarios.rs), each a run of
the official Python SDK (PyPI rocketmq-python-client) against Tern. Every
line printed is one fact the test checks:

  send ENDPOINT TOPIC N PREFIX [--keep-going-on-failure]
      Sends PREFIX-0 .. PREFIX-(N-1); prints `acked BODY` as soon as each send
      is acknowledged. A failed send prints `failed BODY: ERROR` and exits 1,
      or, with --keep-going-on-failure, exits 0 (the test kills the broker).
  receive ENDPOINT TOPIC GROUP EXPECT [--idle S] [--await S] [--invisible S]
          [--batch B] [--no-ack] [--slow S] [--want-file PATH]
      SimpleConsumer: receives (and acks, unless --no-ack) until EXPECT
      distinct bodies were seen, or nothing new came for --idle seconds
      (long polls of --await seconds, one queue at a time); with
      --want-file, until every body listed in that file was seen;
      prints `got BODY attempt A` per delivery, then
      `received DISTINCT deliveries TOTAL`. --slow sleeps per message.
  share ENDPOINT TOPIC GROUP N MEMBERS
      MEMBERS SimpleConsumers of one group (separate clients, one thread
      each) receive and ack, small batches, slowly, until N distinct bodies
      were seen between them; prints `member M got BODY attempt A` per
      delivery.
  push ENDPOINT TOPIC GROUP N
      PushConsumer: consumes until N distinct bodies were seen, lingers to
      catch duplicates; prints `received N duplicates D`; exit 0 only if all
      N arrived exactly once.
"""

import argparse
import os
import sys
import threading
import time

from rocketmq import (ClientConfiguration, ConsumeResult, Credentials,
                      FilterExpression, Message, Producer, PushConsumer,
                      SimpleConsumer)
from rocketmq.v5.consumer import MessageListener


_OUT = threading.Lock()


def say(line):
    # One write per line under a lock: print() from several threads can
    # interleave a line with another's newline.
    with _OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def config(endpoint):
    cfg = ClientConfiguration(endpoint, Credentials(), request_timeout=5)
    return cfg


def send(args):
    producer = Producer(config(args.endpoint), (args.topic,))
    producer.startup()
    for i in range(args.n):
        body = f"{args.prefix}-{i}"
        msg = Message()
        msg.topic = args.topic
        msg.body = body.encode()
        msg.tag = "TagA"
        msg.keys = body
        try:
            receipt = producer.send(msg)
        except Exception as err:  # the broker may be gone: that is the test
            say(f"failed {body}: {err}")
            os._exit(0 if args.keep_going_on_failure else 1)
        if not receipt.message_id:
            say(f"failed {body}: no message id")
            os._exit(1)
        say(f"acked {body}")
    producer.shutdown()
    say(f"sent {args.n}")


def receive(args):
    consumer = SimpleConsumer(config(args.endpoint), args.group,
                              {args.topic: FilterExpression("*")},
                              await_duration=args.await_secs)
    consumer.startup()
    seen = set()
    total = 0
    last_new = time.time()
    deadline = time.time() + 120
    want = None
    if args.want_file:
        with open(args.want_file) as f:
            want = {line.strip() for line in f if line.strip()}

    def done():
        return want <= seen if want is not None else len(seen) >= args.expect

    while not done() and time.time() - last_new < args.idle and time.time() < deadline:
        started = time.time()
        try:
            messages = consumer.receive(args.batch, args.invisible)
        except Exception as err:
            print(f"receive failed after {time.time() - started:.1f}s: {err}",
                  file=sys.stderr, flush=True)
            time.sleep(0.2)
            continue
        # On standard error: shown when a test fails.
        print(f"receive: {len(messages)} messages after {time.time() - started:.1f}s",
              file=sys.stderr, flush=True)
        for msg in messages:
            body = msg.body.decode()
            total += 1
            if body not in seen:
                seen.add(body)
                last_new = time.time()
            say(f"got {body} attempt {msg.delivery_attempt}")
            if not args.no_ack:
                consumer.ack(msg)
            if args.slow:
                time.sleep(args.slow)
    say(f"received {len(seen)} deliveries {total}")
    consumer.shutdown()


def share(args):
    lock = threading.Lock()
    seen = set()
    deadline = time.time() + 90

    def member(index):
        consumer = SimpleConsumer(config(args.endpoint), args.group,
                                  {args.topic: FilterExpression("*")}, await_duration=2)
        consumer.startup()
        while time.time() < deadline:
            with lock:
                if len(seen) >= args.n:
                    break
            try:
                messages = consumer.receive(4, 20)
            except Exception as err:
                print(f"member {index} receive failed: {err}", file=sys.stderr, flush=True)
                time.sleep(0.2)
                continue
            for msg in messages:
                body = msg.body.decode()
                with lock:
                    seen.add(body)
                say(f"member {index} got {body} attempt {msg.delivery_attempt}")
                consumer.ack(msg)
                time.sleep(0.02)
        consumer.shutdown()

    threads = [threading.Thread(target=member, args=(i,)) for i in range(args.members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say(f"received {len(seen)}")


class Counter(MessageListener):
    def __init__(self):
        self.lock = threading.Lock()
        self.got = {}

    def consume(self, message):
        with self.lock:
            body = message.body.decode()
            self.got[body] = self.got.get(body, 0) + 1
        return ConsumeResult.SUCCESS


def push(args):
    counter = Counter()
    consumer = PushConsumer(config(args.endpoint), args.group, counter,
                            {args.topic: FilterExpression("*")})
    consumer.startup()
    deadline = time.time() + 90
    while len(counter.got) < args.n and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # a duplicate delivery would show up now
    with counter.lock:
        got = dict(counter.got)
    duplicates = sum(1 for v in got.values() if v > 1)
    say(f"received {len(got)} duplicates {duplicates}")
    # shutdown() would wait out the long poll in flight: just leave.
    os._exit(0 if len(got) == args.n and duplicates == 0 else 1)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("send")
    p.add_argument("endpoint")
    p.add_argument("topic")
    p.add_argument("n", type=int)
    p.add_argument("prefix")
    p.add_argument("--keep-going-on-failure", action="store_true")
    p.set_defaults(run=send)
    p = sub.add_parser("receive")
    p.add_argument("endpoint")
    p.add_argument("topic")
    p.add_argument("group")
    p.add_argument("expect", type=int)
    # Each receive polls one queue (the SDK goes round the topic's queues),
    # so --idle must cover a round of empty polls of --await seconds each.
    p.add_argument("--idle", type=float, default=30)
    p.add_argument("--await", dest="await_secs", type=int, default=2)
    p.add_argument("--invisible", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--no-ack", action="store_true")
    p.add_argument("--slow", type=float, default=0)
    p.add_argument("--want-file")
    p.set_defaults(run=receive)
    p = sub.add_parser("share")
    p.add_argument("endpoint")
    p.add_argument("topic")
    p.add_argument("group")
    p.add_argument("n", type=int)
    p.add_argument("members", type=int)
    p.set_defaults(run=share)
    p = sub.add_parser("push")
    p.add_argument("endpoint")
    p.add_argument("topic")
    p.add_argument("group")
    p.add_argument("n", type=int)
    p.set_defaults(run=push)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
