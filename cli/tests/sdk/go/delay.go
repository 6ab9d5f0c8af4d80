// Delayed messages with the official Go SDK, run instead of the default
// scenario when TERN_GO_SCENARIO=delay. Arguments: ENDPOINT TOPIC GROUP N
// PRECISION_MS.
//
// The producer sends N messages with delivery times 3, 4 or 5 s ahead
// (Message.SetDelayTimestamp); a SimpleConsumer receives them. Exits 0 only
// if each arrived exactly once, not before its delivery time, at most
// PRECISION_MS (plus 2 s of slack for a loaded machine) after it, and with
// the delivery time it was sent with, and a last receive gets nothing. The
// result is the line `received <n> duplicates <d> missing <m> wrong <w>`.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

func init() {
	if os.Getenv("TERN_GO_SCENARIO") != "delay" {
		return
	}
	if len(os.Args) != 6 {
		fail("usage: TERN_GO_SCENARIO=delay %s ENDPOINT TOPIC GROUP N PRECISION_MS", os.Args[0])
	}
	n, err1 := strconv.Atoi(os.Args[4])
	precision, err2 := strconv.Atoi(os.Args[5])
	if err1 != nil || err2 != nil || n <= 0 || precision <= 0 {
		fail("N and PRECISION_MS must be positive numbers, not %q %q", os.Args[4], os.Args[5])
	}
	if !runDelay(os.Args[1], os.Args[2], os.Args[3], n, int64(precision)) {
		os.Exit(1)
	}
	os.Exit(0)
}

func runDelay(endpoint, topic, group string, n int, precisionMs int64) bool {
	setUpSDK()

	producer := startProducer(endpoint, topic)
	due := make(map[string]int64, n) // body -> delivery time, Unix ms
	for i := 0; i < n; i++ {
		at := time.Now().UnixMilli() + 3000 + int64(i%3)*1000
		body := fmt.Sprintf("%d:%d", i, at)
		msg := &rmq.Message{Topic: topic, Body: []byte(body)}
		msg.SetTag("later")
		msg.SetDelayTimestamp(time.UnixMilli(at))
		receipts, err := producer.Send(context.Background(), msg)
		if err != nil {
			fail("send %d: %v", i, err)
		}
		if len(receipts) != 1 || receipts[0].MessageID == "" {
			fail("send %d: no message id in %+v", i, receipts)
		}
		due[body] = at
	}
	stopClients(producer)
	fmt.Printf("sent %d\n", len(due))

	consumer := startConsumer(endpoint, group, topic, rmq.SUB_ALL, 5*time.Second)
	got := make(map[string]int, n)
	wrong := 0
	deadline := time.Now().Add(40 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		views := receiveOrWait(consumer, 32, 20*time.Second)
		now := time.Now().UnixMilli()
		for _, view := range views {
			body := string(view.GetBody())
			got[body]++
			at, known := due[body]
			var stamped int64 = -1
			if ts := view.GetDeliveryTimestamp(); ts != nil {
				stamped = ts.UnixMilli()
			}
			if !known || now < at || now > at+precisionMs+2000 || stamped != at {
				wrong++
				fmt.Fprintf(os.Stderr, "%s: due %d, received %d, delivery timestamp %d\n",
					body, at, now, stamped)
			}
			ack(consumer, view)
		}
	}
	// Once more, long polling: nothing may come a second time.
	for _, view := range receiveOrWait(consumer, 32, 20*time.Second) {
		got[string(view.GetBody())]++
	}
	stopClients(consumer)

	duplicates, missing := tally(got, due)
	fmt.Printf("received %d duplicates %d missing %d wrong %d\n", len(got), duplicates, missing, wrong)
	return duplicates == 0 && missing == 0 && wrong == 0
}
