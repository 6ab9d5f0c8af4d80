"""Send N messages with user properties through the official Python
producer, then receive them with SimpleConsumers subscribed with SQL92
filter expressions: exit 0 only if each consumer got exactly the matching
messages, once each, and a malformed expression was refused with a status
naming the problem. Arguments: ENDPOINT TOPIC N."""

import sys
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer)
from rocketmq.grpc_protocol import FilterType


def color(i):
    return "red" if i % 3 == 0 else "blue"


def receive_all(config, group, topic, expression, want):
    """Receives and acks until `want` arrived (or 60 s passed), then once
    more to see that nothing else comes; returns the bodies and counts."""
    consumer = SimpleConsumer(config, group,
                              {topic: FilterExpression(expression, FilterType.SQL)},
                              await_duration=5)
    consumer.startup()
    got = {}
    deadline = time.time() + 60
    while len(got) < len(want) and time.time() < deadline:
        for msg in consumer.receive(32, 20):
            body = msg.body.decode()
            got[body] = got.get(body, 0) + 1
            consumer.ack(msg)
    for msg in consumer.receive(32, 20):
        body = msg.body.decode()
        got[body] = got.get(body, 0) + 1
    consumer.shutdown()
    extra = sorted(set(got) - want)
    missing = sorted(want - set(got))
    duplicates = sorted(k for k, v in got.items() if v > 1)
    print(f"{group}: {expression!r} received {len(got)} of {len(want)} "
          f"extra {extra} missing {missing} duplicates {duplicates}", flush=True)
    return not extra and not missing and not duplicates


def bad_filter_refused(config, topic):
    consumer = SimpleConsumer(config, "py-sql-bad",
                              {topic: FilterExpression("n >= AND", FilterType.SQL)},
                              await_duration=5)
    consumer.startup()
    try:
        consumer.receive(32, 20)
    except Exception as e:  # the SDK raises on a non-OK status
        text = str(e)
        print(f"bad filter: {text}", flush=True)
        return "column" in text and "n >= AND" in text
    finally:
        consumer.shutdown()
    print("bad filter: no error", flush=True)
    return False


def main():
    endpoint, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = ClientConfiguration(endpoint, Credentials())

    producer = Producer(config, (topic,))
    producer.startup()
    for i in range(n):
        msg = Message()
        msg.topic = topic
        msg.body = f"py-{i}".encode()
        msg.tag = "even" if i % 2 == 0 else "odd"
        msg.add_property("n", str(i))
        msg.add_property("color", color(i))
        if not producer.send(msg).message_id:
            raise SystemExit(f"send {i}: no message id")
    producer.shutdown()
    print(f"sent {n}", flush=True)

    ok = receive_all(config, "py-sql-red", topic, "n >= 10 AND color = 'red'",
                     {f"py-{i}" for i in range(n) if i >= 10 and color(i) == "red"})
    ok &= receive_all(config, "py-sql-tags", topic,
                      "TAGS = 'odd' AND n NOT BETWEEN 5 AND 25 OR n IN ('2', '4')",
                      {f"py-{i}" for i in range(n)
                       if (i % 2 == 1 and not 5 <= i <= 25) or i in (2, 4)})
    refused = bad_filter_refused(config, topic)
    print(f"sql filters ok {ok} refused {refused}", flush=True)
    sys.exit(0 if ok and refused else 1)


if __name__ == "__main__":
    main()
