"""Send N messages with the official Python producer, then receive and ack
them with the official SimpleConsumer; exit 0 only if every message arrived
exactly once. Arguments: ENDPOINT TOPIC GROUP N. With TERN_SDK_TLS=1 the
clients connect with TLS (the CA to trust in GRPC_DEFAULT_SSL_ROOTS_FILE_PATH,
which gRPC reads); TERN_SDK_ACCESS_KEY and TERN_SDK_SECRET_KEY are the
credentials the clients sign their requests with."""

import os
import sys
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer)


def main():
    endpoint, topic, group, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    credentials = Credentials(os.environ.get("TERN_SDK_ACCESS_KEY", ""),
                              os.environ.get("TERN_SDK_SECRET_KEY", ""))
    config = ClientConfiguration(endpoint, credentials)
    tls = os.environ.get("TERN_SDK_TLS") == "1"

    producer = Producer(config, (topic,), tls_enable=tls)
    producer.startup()
    sent = set()
    for i in range(n):
        msg = Message()
        msg.topic = topic
        msg.body = f"py-{i}".encode()
        msg.tag = "TagA"
        msg.keys = f"key-{i}"
        receipt = producer.send(msg)
        if not receipt.message_id:
            raise SystemExit(f"send {i}: no message id in {receipt}")
        sent.add(f"py-{i}")
    producer.shutdown()
    print(f"sent {len(sent)}", flush=True)

    consumer = SimpleConsumer(config, group, {topic: FilterExpression("TagA")}, await_duration=5,
                              tls_enable=tls)
    consumer.startup()
    got = {}
    deadline = time.time() + 90
    while len(got) < n and time.time() < deadline:
        for msg in consumer.receive(32, 20):
            body = msg.body.decode()
            got[body] = got.get(body, 0) + 1
            consumer.ack(msg)
    consumer.shutdown()

    duplicates = sorted(k for k, v in got.items() if v > 1)
    missing = sorted(sent - set(got))
    print(f"received {len(got)} duplicates {len(duplicates)} missing {len(missing)}", flush=True)
    sys.exit(0 if not missing and not duplicates else 1)


if __name__ == "__main__":
    main()
