"""Transactional messages through the official Python SDK. Arguments:
ENDPOINT TOPIC MODE [TAG].

Modes:
- `all`: a producer with a TransactionChecker commits one transaction,
  rolls one back, and leaves one orphaned (neither); the broker must ask
  the checker about the orphan, which commits it. A SimpleConsumer must
  then receive the committed one, the orphan and a later committed marker,
  and (after waiting a few more seconds) never the rolled-back one.
  Prints `txn ok committed .. rolled_back_absent .. orphan_checked ..`.
- `orphan`: sends one half message (body `orphan-TAG`) and exits without
  resolving it. Prints `orphan sent TRANSACTION_ID`.
- `check`: a producer with a committing checker waits for the broker to
  ask about `orphan-TAG` while a consumer waits for it to arrive. Prints
  `check ok checked .. delivered ..`.
- `receive`: a consumer alone waits for `orphan-TAG` (resolved by the
  broker's default, no producer connected). Prints `receive ok ..`.
"""

import sys
import threading
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer, TransactionChecker,
                      TransactionResolution)


class Checker(TransactionChecker):
    """Commits the half messages it is asked about whose body starts with
    `orphan-`, rolls back anything else; remembers what it was asked."""

    def __init__(self):
        self.asked = []
        self.lock = threading.Lock()

    def check(self, message):
        body = message.body.decode()
        with self.lock:
            self.asked.append(body)
        print(f"checker asked about {body} ({message.message_id})", flush=True)
        if body.startswith("orphan-"):
            return TransactionResolution.COMMIT
        return TransactionResolution.ROLLBACK

    def was_asked(self, body):
        with self.lock:
            return body in self.asked


def half(producer, topic, body):
    msg = Message()
    msg.topic = topic
    msg.body = body.encode()
    msg.tag = "txn"
    msg.add_property("case", body)
    tx = producer.begin_transaction()
    receipt = producer.send(msg, tx)
    if not receipt.transaction_id:
        raise SystemExit(f"{body}: no transaction id in the send receipt")
    return tx, receipt


def receive(consumer, seen, until, deadline):
    """Receives and acks into `seen` (body -> count) until `until(seen)`
    or the deadline."""
    while not until(seen) and time.time() < deadline:
        for msg in consumer.receive(16, 15):
            body = msg.body.decode()
            seen[body] = seen.get(body, 0) + 1
            print(f"received {body}", flush=True)
            consumer.ack(msg)


def consumer_of(config, topic, group):
    consumer = SimpleConsumer(config, group, {topic: FilterExpression("*")},
                              await_duration=5)
    consumer.startup()
    return consumer


def run_all(config, topic, tag):
    checker = Checker()
    producer = Producer(config, (topic,), checker)
    producer.startup()
    consumer = consumer_of(config, topic, f"py-txn-{tag}")

    tx, _ = half(producer, topic, f"commit-{tag}")
    tx.commit()
    tx, _ = half(producer, topic, f"rollback-{tag}")
    tx.rollback()
    _, orphan = half(producer, topic, f"orphan-{tag}")
    print(f"orphan transaction {orphan.transaction_id}", flush=True)
    tx, _ = half(producer, topic, f"marker-{tag}")
    tx.commit()

    seen = {}
    want = {f"commit-{tag}", f"orphan-{tag}", f"marker-{tag}"}
    receive(consumer, seen, lambda s: want <= set(s), time.time() + 60)
    # The rolled-back one must not come, not even a few seconds later.
    receive(consumer, seen, lambda s: False, time.time() + 6)
    consumer.shutdown()
    producer.shutdown()

    committed = seen.get(f"commit-{tag}") == 1 and seen.get(f"marker-{tag}") == 1
    absent = f"rollback-{tag}" not in seen
    checked = checker.was_asked(f"orphan-{tag}") and seen.get(f"orphan-{tag}") == 1
    asked_others = [b for b in checker.asked if not b.startswith("orphan-")]
    print(f"seen {seen} checker asked {checker.asked}", flush=True)
    ok = committed and absent and checked and not asked_others
    print(f"txn ok {ok} committed {committed} rolled_back_absent {absent} "
          f"orphan_checked {checked}", flush=True)
    return ok


def run_orphan(config, topic, tag):
    producer = Producer(config, (topic,), Checker())
    producer.startup()
    _, receipt = half(producer, topic, f"orphan-{tag}")
    producer.shutdown()
    print(f"orphan sent {receipt.transaction_id}", flush=True)
    return True


def run_check(config, topic, tag):
    checker = Checker()
    producer = Producer(config, (topic,), checker)
    producer.startup()
    consumer = consumer_of(config, topic, f"py-txn-check-{tag}")
    seen = {}
    body = f"orphan-{tag}"
    receive(consumer, seen, lambda s: body in s, time.time() + 60)
    consumer.shutdown()
    producer.shutdown()
    checked = checker.was_asked(body)
    delivered = seen.get(body) == 1
    print(f"check ok {checked and delivered} checked {checked} delivered {delivered}",
          flush=True)
    return checked and delivered


def run_receive(config, topic, tag):
    consumer = consumer_of(config, topic, f"py-txn-default-{tag}")
    seen = {}
    body = f"orphan-{tag}"
    receive(consumer, seen, lambda s: body in s, time.time() + 60)
    consumer.shutdown()
    delivered = seen.get(body) == 1
    print(f"receive ok {delivered} seen {seen}", flush=True)
    return delivered


def main():
    endpoint, topic, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    tag = sys.argv[4] if len(sys.argv) > 4 else "x"
    config = ClientConfiguration(endpoint, Credentials())
    modes = {"all": run_all, "orphan": run_orphan, "check": run_check,
             "receive": run_receive}
    ok = modes[mode](config, topic, tag)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
