"""Send de-duplication through the official Python SDK's own retry.
Arguments: ENDPOINT NORMAL_TOPIC DELAY_TOPIC TXN_TOPIC.

The first answer to each send is lost on its way back: the broker has
written (or parked) the message, but the SDK is told the call failed, as
after a timeout. The SDK then retries the send with the same message id,
as it does after any failure. For a normal, a delayed and a
transactional message (committed), the receipt the SDK returns must
carry what the broker answered the first time (offset; recall handle;
transaction id), and a consumer must get each message exactly once.
Prints "dedup ok True" when all hold.
"""

import sys
import time
from concurrent.futures import Future

from rocketmq import (ClientConfiguration, Credentials, FilterExpression,
                      Message, Producer, SimpleConsumer, TransactionChecker,
                      TransactionResolution)


class Checker(TransactionChecker):
    """Rolls back anything it is asked about: the test commits its
    transaction itself, well before a check."""

    def check(self, message):
        print(f"checker asked about {message.message_id}", flush=True)
        return TransactionResolution.ROLLBACK


def lose_first_answers(producer):
    """Makes the producer's RPC client drop the first answer to each
    message id (after the broker sent it). Returns the dropped answers
    (message id -> result entry) and the attempts made per id."""
    rpc = producer.rpc_client
    send = rpc.send_message_async
    dropped, attempts = {}, {}

    def send_losing_first_answer(endpoints, req, metadata, timeout=3):
        future = send(endpoints, req, metadata, timeout=timeout)
        mid = req.messages[0].system_properties.message_id
        attempts[mid] = attempts.get(mid, 0) + 1
        if mid in dropped:
            return future
        dropped[mid] = future.result().entries[0]
        lost = Future()
        lost.set_exception(RuntimeError("answer lost on the way back"))
        return lost

    rpc.send_message_async = send_losing_first_answer
    return dropped, attempts


def message(topic, body):
    m = Message()
    m.topic = topic
    m.body = body.encode()
    m.tag = "dedup"
    return m


def main(endpoint, normal, delay, txn):
    config = ClientConfiguration(endpoint, Credentials(), request_timeout=10)
    producer = Producer(config, (normal, delay, txn), Checker())
    producer.startup()
    dropped, attempts = lose_first_answers(producer)
    ok = True

    def same(what, receipt, field, value):
        nonlocal ok
        first = getattr(dropped[receipt.message_id], field)
        tries = attempts[receipt.message_id]
        print(f"{what}: {field} {value!r}, first answer {first!r}, {tries} attempts",
              flush=True)
        if value != first or first == "" or tries != 2:
            ok = False

    receipt = producer.send(message(normal, "normal"))
    same("normal", receipt, "offset", receipt.offset)
    delayed = message(delay, "delayed")
    delayed.delivery_timestamp = int(time.time()) + 3
    receipt = producer.send(delayed)
    same("delayed", receipt, "recall_handle", receipt.recall_handle)
    tx = producer.begin_transaction()
    receipt = producer.send(message(txn, "half"), tx)
    same("half", receipt, "transaction_id", receipt.transaction_id)
    tx.commit()
    producer.shutdown()

    consumer = SimpleConsumer(config, "py-dedup",
                              {t: FilterExpression("*") for t in (normal, delay, txn)},
                              await_duration=5)
    consumer.startup()
    seen = {}
    # Until all three came, then a while longer: a duplicate would come
    # with or soon after its original (the delayed one is due in 3 s).
    deadline, quiet_until = time.time() + 40, None
    while time.time() < deadline and (quiet_until is None or time.time() < quiet_until):
        for msg in consumer.receive(16, 15):
            body = msg.body.decode()
            seen[body] = seen.get(body, 0) + 1
            print(f"received {body}", flush=True)
            consumer.ack(msg)
        if quiet_until is None and len(seen) == 3:
            quiet_until = time.time() + 3
    consumer.shutdown()
    print(f"received {seen}", flush=True)
    ok = ok and seen == {"normal": 1, "delayed": 1, "half": 1}
    print(f"dedup ok {ok}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
