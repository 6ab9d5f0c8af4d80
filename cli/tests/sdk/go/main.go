// Send N messages with the official Go producer
// (github.com/apache/rocketmq-clients/golang/v5), then receive and ack them
// with the official SimpleConsumer; exit 0 only if every message arrived
// exactly once. Arguments: ENDPOINT TOPIC GROUP N.
//
// The SDK's own log goes to stdout at WARN level (so a failure shows why);
// the result is the line `received <n> duplicates <d> missing <m>`.
//
// Other scenarios live in their own files and run instead of this one when
// TERN_GO_SCENARIO names them: `txn` (txn.go, transactional messages),
// `fifo` (fifo.go), `delay` (delay.go), `sql` (sql.go, SQL92 filters) and
// `bench` (bench.go, a timed send loop for scripts/bench-compare).
// What they share is in common.go.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

func main() {
	if len(os.Args) != 5 {
		fail("usage: %s ENDPOINT TOPIC GROUP N", os.Args[0])
	}
	endpoint, topic, group := os.Args[1], os.Args[2], os.Args[3]
	n, err := strconv.Atoi(os.Args[4])
	if err != nil || n <= 0 {
		fail("N must be a positive number, not %q", os.Args[4])
	}
	setUpSDK()
	ctx := context.Background()

	producer := startProducer(endpoint, topic)
	sent := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("go-%d", i)
		msg := &rmq.Message{Topic: topic, Body: []byte(body)}
		msg.SetTag("TagA")
		msg.SetKeys(fmt.Sprintf("key-%d", i))
		receipts, err := producer.Send(ctx, msg)
		if err != nil {
			fail("send %d: %v", i, err)
		}
		if len(receipts) != 1 || receipts[0].MessageID == "" {
			fail("send %d: no message id in %+v", i, receipts)
		}
		sent[body] = true
	}
	stopClients(producer)
	fmt.Printf("sent %d\n", len(sent))

	consumer := startConsumer(endpoint, group, topic, rmq.NewFilterExpression("TagA"), 5*time.Second)
	got := make(map[string]int, n)
	deadline := time.Now().Add(90 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		for _, view := range receiveOrWait(consumer, 32, 20*time.Second) {
			got[string(view.GetBody())]++
			ack(consumer, view)
		}
	}
	stopClients(consumer)

	duplicates, missing := tally(got, sent)
	fmt.Printf("received %d duplicates %d missing %d\n", len(got), duplicates, missing)
	if duplicates != 0 || missing != 0 {
		os.Exit(1)
	}
}
