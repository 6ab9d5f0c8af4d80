"""An order service keeps taking orders while the inventory service that
consumes them is down; when the inventory service comes back it catches up
on every order it missed, each exactly once.

Needs topic `orders` (see README.md). Exits 0 only if that is what happened.
"""

from common import arguments, consumer, producer, receive_until, send, verdict

TOPIC, GROUP = "orders", "inventory"


def main():
    args = arguments(__doc__)
    orders = producer(args.endpoint, TOPIC)
    processed = []

    def reserve_stock(body):
        processed.append(body)
        print(f"  inventory: reserved stock for {body}")

    print("1. Both services are up.")
    first = {f"order-{i}" for i in range(1, 6)}
    for body in sorted(first):
        send(orders, TOPIC, body, keys=body)
        print(f"  orders: took {body}")
    inventory = consumer(args.endpoint, GROUP, TOPIC)
    seen = receive_until(inventory, first, reserve_stock)

    print("2. The inventory service goes down; orders keep coming in.")
    inventory.shutdown()
    missed = {f"order-{i}" for i in range(6, 21)}
    for body in sorted(missed, key=lambda b: int(b.split("-")[1])):
        send(orders, TOPIC, body, keys=body)
        print(f"  orders: took {body} (inventory is down; the broker keeps it)")
    orders.shutdown()

    print("3. The inventory service comes back and catches up.")
    inventory = consumer(args.endpoint, GROUP, TOPIC)
    caught_up = receive_until(inventory, missed, reserve_stock)
    inventory.shutdown()

    all_orders = first | missed
    counts = {**seen, **caught_up}
    duplicates = [b for b in processed if processed.count(b) > 1]
    verdict(all_orders <= counts.keys() and not duplicates,
            f"all {len(all_orders)} orders reserved once, "
            f"{len(missed)} of them taken while inventory was down",
            f"missing {sorted(all_orders - counts.keys())}, duplicates {sorted(set(duplicates))}")


if __name__ == "__main__":
    main()
