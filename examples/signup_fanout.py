"""A sign-up is published once and fanned out: the email service and the
SMS service are two consumer groups of the same topic, and each gets every
sign-up.

Needs topic `signups` (see README.md). Exits 0 only if both services saw
every sign-up exactly once.
"""

import threading

from common import arguments, consumer, producer, receive_until, send, verdict

TOPIC = "signups"
USERS = ["alice", "bob", "carol", "dave", "erin"]


def main():
    args = arguments(__doc__)
    signups = producer(args.endpoint, TOPIC)
    print("1. Users sign up.")
    for user in USERS:
        send(signups, TOPIC, user, keys=user)
        print(f"  sign-up: {user}")
    signups.shutdown()

    print("2. The email and SMS services each handle every sign-up.")
    results = {}

    def service(group, action):
        c = consumer(args.endpoint, group, TOPIC)
        results[group] = receive_until(c, set(USERS), lambda user: print(f"  {action(user)}"))
        c.shutdown()

    threads = [
        threading.Thread(target=service, args=("email-service",
                                               lambda u: f"email: welcome mail to {u}@example.com")),
        threading.Thread(target=service, args=("sms-service",
                                               lambda u: f"sms: welcome text to {u}")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    ok = all(set(USERS) == results.get(g, {}).keys() and
             all(n == 1 for n in results[g].values())
             for g in ("email-service", "sms-service"))
    verdict(ok, f"{len(USERS)} sign-ups, each sent one email and one SMS",
            f"email saw {results.get('email-service')}, sms saw {results.get('sms-service')}")


if __name__ == "__main__":
    main()
