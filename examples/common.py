"""Small helpers shared by the examples: the endpoint, a producer, a
consumer, and a receive loop. Uses only the official RocketMQ 5 Python SDK
(`pip install rocketmq-python-client==5.1.2`)."""

import argparse
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer)


def arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--endpoint", default="127.0.0.1:8081",
                        help="address of `tern standalone` (default 127.0.0.1:8081)")
    return parser.parse_args()


def config(endpoint):
    return ClientConfiguration(endpoint, Credentials(), request_timeout=5)


def producer(endpoint, topic):
    p = Producer(config(endpoint), (topic,))
    p.startup()
    return p


def send(p, topic, body, keys=None):
    msg = Message()
    msg.topic = topic
    msg.body = body.encode()
    if keys:
        msg.keys = keys
    return p.send(msg)


def consumer(endpoint, group, topic):
    # Long polls of a few seconds: an idle consumer waits on the broker.
    c = SimpleConsumer(config(endpoint), group, {topic: FilterExpression("*")},
                       await_duration=5)
    c.startup()
    return c


def receive_until(c, want, handle, batch=16, timeout=60):
    """Receives, calls `handle(body)` and acks, until every body in the set
    `want` was seen or `timeout` seconds passed; returns {body: times seen}."""
    seen = {}
    deadline = time.time() + timeout
    while not want <= seen.keys() and time.time() < deadline:
        try:
            messages = c.receive(batch, 30)
        except Exception as err:  # a failed poll: try again
            print(f"  (receive failed: {err})")
            time.sleep(0.5)
            continue
        for msg in messages:
            body = msg.body.decode()
            seen[body] = seen.get(body, 0) + 1
            handle(body)
            c.ack(msg)
    return seen


def verdict(ok, success, failure):
    """Prints the outcome; the exit status says it too."""
    print(f"OK: {success}" if ok else f"FAILED: {failure}")
    raise SystemExit(0 if ok else 1)
