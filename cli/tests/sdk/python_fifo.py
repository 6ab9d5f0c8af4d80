"""FIFO order per message group with the official Python SDK.

Arguments: ENDPOINT TOPIC GROUP GROUPS PER_GROUP DLQ_TOPIC DLQ_GROUP.

1. The FIFO producer sends PER_GROUP messages to each of GROUPS message
   groups (body "<group>:<seq>"), one send per group in flight at a time,
   so each group's send order is its sequence order.
2. Two SimpleConsumers of the FIFO consumer group GROUP receive them
   concurrently and leave about 5% of the messages unacknowledged the
   first time they see them (they come back after the invisibility).
   Checked for every received message: it is the first not yet
   acknowledged message of its group (never a later one while an earlier
   one is out or waiting for its retry). At the end each group's
   acknowledged sequence must be exactly 0..PER_GROUP-1 and nothing more
   may arrive.
3. DLQ_GROUP (FIFO, one retry) reads five messages of one group from
   DLQ_TOPIC and never acknowledges seq 2: it must get 0, 1, 2 twice, then
   3, 4 (the group moves on once 2 is dead-lettered), and the dead-letter
   topic must hold seq 2.

Prints "fifo ok <bool> dlq ok <bool>" and exits 0 only if both hold."""

import sys
import threading
import time
from concurrent.futures import wait

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer)

INVISIBLE = 3  # seconds a received message stays invisible
DEADLINE = 100  # seconds for the whole consumption


def retried(group, seq):
    """Whether the consumer leaves (group, seq) unacked the first time."""
    return (group * 131 + seq * 17) % 20 == 0


def send_groups(config, topic, groups, per_group):
    producer = Producer(config, (topic,))
    producer.startup()
    started = time.time()
    for seq in range(per_group):
        futures = []
        for g in range(groups):
            msg = Message()
            msg.topic = topic
            msg.body = f"{g}:{seq}".encode()
            msg.message_group = f"group-{g}"
            msg.keys = f"{g}-{seq}"
            futures.append(producer.send_async(msg))
        wait(futures)
        for f in futures:
            if not f.result().message_id:
                raise SystemExit(f"seq {seq}: a send returned no message id")
    producer.shutdown()
    print(f"sent {groups * per_group} in {time.time() - started:.1f} s",
          flush=True)


class Checker:
    """What the consumers saw, per message group; one lock per group is
    held from the check of a message through its ack, so a consumer that
    receives the next message of the group checks it only after the ack
    was recorded."""

    def __init__(self, groups, per_group):
        self.per_group = per_group
        self.locks = [threading.Lock() for _ in range(groups)]
        self.expected = [0] * groups
        self.acked = [[] for _ in range(groups)]
        self.violations = []
        self.received = 0
        self.redelivered = 0
        self.left_unacked = 0
        self.count_lock = threading.Lock()

    def done(self):
        return all(e >= self.per_group for e in self.expected)

    def handle(self, consumer, msg):
        g, seq = (int(x) for x in msg.body.decode().split(":"))
        with self.count_lock:
            self.received += 1
            if msg.delivery_attempt and msg.delivery_attempt > 1:
                self.redelivered += 1
        with self.locks[g]:
            if msg.message_group != f"group-{g}":
                self.violations.append(f"{g}:{seq} has group {msg.message_group!r}")
            if seq != self.expected[g]:
                self.violations.append(
                    f"group {g}: got {seq} (attempt {msg.delivery_attempt}) "
                    f"while {self.expected[g]} is not acked")
                return
            if msg.delivery_attempt == 1 and retried(g, seq):
                with self.count_lock:
                    self.left_unacked += 1
                return
            consumer.ack(msg)
            self.acked[g].append(seq)
            self.expected[g] = seq + 1


def consume(config, topic, group, checker, errors):
    consumer = SimpleConsumer(config, group, {topic: FilterExpression()},
                              await_duration=5)
    consumer.startup()
    deadline = time.time() + DEADLINE
    try:
        while not checker.done() and time.time() < deadline:
            for msg in consumer.receive(32, INVISIBLE):
                checker.handle(consumer, msg)
    except Exception as e:  # noqa: BLE001 - reported as the failure
        errors.append(repr(e))
    finally:
        consumer.shutdown()


def fifo_order(config, topic, group, groups, per_group):
    send_groups(config, topic, groups, per_group)
    checker = Checker(groups, per_group)
    errors = []
    started = time.time()
    threads = [threading.Thread(target=consume,
                                args=(config, topic, group, checker, errors))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    # Nothing more may come: everything was acknowledged.
    extra = []
    late = SimpleConsumer(config, group, {topic: FilterExpression()},
                          await_duration=5)
    late.startup()
    for msg in late.receive(32, INVISIBLE):
        extra.append(msg.body.decode())
    late.shutdown()
    wrong = [g for g in range(groups)
             if checker.acked[g] != list(range(per_group))]
    print(f"consumed in {elapsed:.1f} s: received {checker.received}, "
          f"left unacked {checker.left_unacked}, redelivered "
          f"{checker.redelivered}, violations {len(checker.violations)} "
          f"{checker.violations[:5]}, groups out of order or short {wrong[:5]}, "
          f"errors {errors[:3]}, extra {extra[:5]}", flush=True)
    want_unacked = sum(retried(g, s) for g in range(groups)
                       for s in range(per_group))
    return (not checker.violations and not wrong and not errors and not extra
            and checker.left_unacked == want_unacked
            and checker.redelivered >= want_unacked)


def dead_letter_moves_on(config, topic, group):
    producer = Producer(config, (topic,))
    producer.startup()
    for seq in range(5):
        msg = Message()
        msg.topic = topic
        msg.body = f"d:{seq}".encode()
        msg.message_group = "dlq-group"
        producer.send(msg)
    producer.shutdown()
    consumer = SimpleConsumer(config, group, {topic: FilterExpression()},
                              await_duration=5)
    consumer.startup()
    seen = []
    deadline = time.time() + 40
    while len(seen) < 6 and time.time() < deadline:
        for msg in consumer.receive(8, 2):
            seq = int(msg.body.decode().split(":")[1])
            seen.append((seq, msg.delivery_attempt))
            if seq != 2:
                consumer.ack(msg)
    consumer.shutdown()
    dlq = SimpleConsumer(config, "py-fifo-dlq-reader",
                         {f"%DLQ%{group}": FilterExpression()}, await_duration=5)
    dlq.startup()
    dead = []
    deadline = time.time() + 20
    while not dead and time.time() < deadline:
        for msg in dlq.receive(8, 10):
            dead.append(msg.body.decode())
            dlq.ack(msg)
    dlq.shutdown()
    print(f"dead-letter group: received {seen}, dead-lettered {dead}",
          flush=True)
    return (seen == [(0, 1), (1, 1), (2, 1), (2, 2), (3, 1), (4, 1)]
            and dead == ["d:2"])


def main():
    (endpoint, topic, group, groups, per_group,
     dlq_topic, dlq_group) = sys.argv[1:8]
    config = ClientConfiguration(endpoint, Credentials())
    ok = fifo_order(config, topic, group, int(groups), int(per_group))
    dlq_ok = dead_letter_moves_on(config, dlq_topic, dlq_group)
    print(f"fifo ok {ok} dlq ok {dlq_ok}", flush=True)
    sys.exit(0 if ok and dlq_ok else 1)


if __name__ == "__main__":
    main()
