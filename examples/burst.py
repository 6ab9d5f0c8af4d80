"""A burst of requests is absorbed by the broker at once, and a consumer
drains it at its own steady pace: the producer is never slowed down by the
consumer, and the consumer is never flooded.

Needs topic `thumbnails` (see README.md). Exits 0 only if every request was
processed exactly once, the burst was accepted faster than it was drained,
and the consumer never went faster than its pace.
"""

import time

from common import arguments, consumer, producer, receive_until, send, verdict

TOPIC, GROUP = "thumbnails", "thumbnailer"
BURST = 200
PACE = 100  # requests per second the consumer handles


def main():
    args = arguments(__doc__)
    requests = producer(args.endpoint, TOPIC)
    want = {f"image-{i}" for i in range(BURST)}

    print(f"1. A burst of {BURST} thumbnail requests arrives.")
    started = time.time()
    for i in range(BURST):
        send(requests, TOPIC, f"image-{i}")
    absorbed = time.time() - started
    requests.shutdown()
    print(f"  the broker took all {BURST} in {absorbed:.2f}s")

    print(f"2. The thumbnailer drains them at {PACE} per second.")
    done = []

    def make_thumbnail(body):
        time.sleep(1 / PACE)  # the work
        done.append(body)
        if len(done) % 50 == 0:
            print(f"  {len(done)} done, {BURST - len(done)} waiting in the broker")

    worker = consumer(args.endpoint, GROUP, TOPIC)
    started = time.time()
    seen = receive_until(worker, want, make_thumbnail, batch=10, timeout=120)
    drained = time.time() - started
    worker.shutdown()
    print(f"  drained in {drained:.2f}s")

    duplicates = sorted(b for b, n in seen.items() if n > 1)
    missing = sorted(want - seen.keys())
    paced = drained >= BURST / PACE
    verdict(not duplicates and not missing and paced and absorbed < drained,
            f"{BURST} requests absorbed in {absorbed:.2f}s, drained at the consumer's pace "
            f"in {drained:.2f}s",
            f"missing {missing}, duplicates {duplicates}, absorbed {absorbed:.2f}s, "
            f"drained {drained:.2f}s")


if __name__ == "__main__":
    main()
