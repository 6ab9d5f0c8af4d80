"""Delayed messages through the official Python SDK, in two phases so the
test can kill the broker in between.

send ENDPOINT TOPIC N: sends N delayed messages due 8-11 s from now (the
SDK takes whole seconds), one more that it recalls at once (a second
recall must not return its id), and one due beyond the broker's maximum delay (must be
refused). Prints "sent N recalled True refused True".

receive ENDPOINT TOPIC N PRECISION_MS: receives until the N messages came
(or 60 s passed) and checks each arrived not before its delivery time and
was stored at most PRECISION_MS (plus 500 ms of scheduling slack) after
it, exactly once; the recalled one never comes. Prints "delay ok True"
when all hold."""

import sys
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer)


def config(endpoint):
    return ClientConfiguration(endpoint, Credentials(), request_timeout=10)


def send(endpoint, topic, n):
    producer = Producer(config(endpoint), (topic,))
    producer.startup()
    base = int(time.time())
    for i in range(n):
        due = base + 8 + i % 4
        m = Message()
        m.topic = topic
        m.body = f"{i}:{due * 1000}".encode()
        m.tag = "later"
        m.delivery_timestamp = due
        producer.send(m)
    m = Message()
    m.topic = topic
    m.body = b"recalled"
    m.delivery_timestamp = base + 5
    receipt = producer.send(m)
    recalled = producer.recall_message(topic, receipt.recall_handle) == receipt.message_id
    # The broker answers MESSAGE_NOT_FOUND, which this SDK passes on as
    # an empty message id rather than an exception.
    try:
        again = producer.recall_message(topic, receipt.recall_handle)
        print(f"second recall answered {again!r}", flush=True)
        recalled = recalled and again != receipt.message_id
    except Exception as e:
        print(f"second recall refused: {e}", flush=True)
    m = Message()
    m.topic = topic
    m.body = b"too far"
    m.delivery_timestamp = base + 30 * 24 * 3600
    try:
        producer.send(m)
        refused = False
        print("a 30-day delay was accepted", flush=True)
    except Exception as e:
        refused = "limit" in str(e)
        print(f"a 30-day delay was refused: {e}", flush=True)
    producer.shutdown()
    print(f"sent {n} recalled {recalled} refused {refused}", flush=True)


def receive(endpoint, topic, n, precision_ms):
    consumer = SimpleConsumer(config(endpoint), "py-delay",
                              {topic: FilterExpression("*")}, await_duration=5)
    consumer.startup()
    ok = True
    seen = {}
    deadline = time.time() + 60
    while len(seen) < n and time.time() < deadline:
        for msg in consumer.receive(32, 20):
            now = int(time.time() * 1000)
            body = msg.body.decode()
            consumer.ack(msg)
            if body == "recalled":
                print("the recalled message arrived", flush=True)
                ok = False
                continue
            i, due = (int(x) for x in body.split(":"))
            if i in seen:
                print(f"{i} arrived twice", flush=True)
                ok = False
            seen[i] = now
            # The SDK keeps the store time but has no accessor for it.
            stored = msg._Message__store_timestamp
            if now < due or stored < due:
                print(f"{i} early: due {due} stored {stored} received {now}", flush=True)
                ok = False
            if stored > due + precision_ms + 500:
                print(f"{i} late: due {due} stored {stored} ({stored - due} ms)", flush=True)
                ok = False
            if msg.delivery_timestamp != due:
                print(f"{i}: delivery_timestamp {msg.delivery_timestamp} != {due}", flush=True)
                ok = False
    # Nothing else comes (the recalled message was due well before now).
    for msg in consumer.receive(32, 20):
        print(f"unexpected message {msg.body!r}", flush=True)
        ok = False
    consumer.shutdown()
    print(f"received {len(seen)} of {n}", flush=True)
    print(f"delay ok {ok and len(seen) == n}", flush=True)


if __name__ == "__main__":
    phase, endpoint, topic, n = sys.argv[1:5]
    if phase == "send":
        send(endpoint, topic, int(n))
    else:
        receive(endpoint, topic, int(n), int(sys.argv[5]))
