// Send N messages with the official Go producer
// (github.com/apache/rocketmq-clients/golang/v5), then receive and ack them
// with the official SimpleConsumer; exit 0 only if every message arrived
// exactly once. Arguments: ENDPOINT TOPIC GROUP N.
//
// The SDK's own log goes to stdout at WARN level (so a failure shows why);
// the result is the line `received <n> duplicates <d> missing <m>`.
//
// Other scenarios live in their own files and run instead of this one when
// TERN_GO_SCENARIO names them: `txn` (txn.go, transactional messages).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fail("usage: %s ENDPOINT TOPIC GROUP N", os.Args[0])
	}
	endpoint, topic, group := os.Args[1], os.Args[2], os.Args[3]
	n, err := strconv.Atoi(os.Args[4])
	if err != nil || n <= 0 {
		fail("N must be a positive number, not %q", os.Args[4])
	}

	// Tern speaks plain-text gRPC: the SDK defaults to TLS.
	rmq.EnableSsl = false
	os.Setenv(rmq.ENABLE_CONSOLE_APPENDER, "true")
	os.Setenv(rmq.CLIENT_LOG_LEVEL, "warn")
	rmq.ResetLogger()

	ctx := context.Background()
	creds := &credentials.SessionCredentials{}

	producer, err := rmq.NewProducer(&rmq.Config{Endpoint: endpoint, Credentials: creds},
		rmq.WithTopics(topic))
	if err != nil {
		fail("new producer: %v", err)
	}
	if err := producer.Start(); err != nil {
		fail("start producer: %v", err)
	}
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
	if err := producer.GracefulStop(); err != nil {
		fail("stop producer: %v", err)
	}
	fmt.Printf("sent %d\n", len(sent))

	consumer, err := rmq.NewSimpleConsumer(
		&rmq.Config{Endpoint: endpoint, ConsumerGroup: group, Credentials: creds},
		rmq.WithSimpleAwaitDuration(5*time.Second),
		rmq.WithSimpleSubscriptionExpressions(map[string]*rmq.FilterExpression{
			topic: rmq.NewFilterExpression("TagA"),
		}),
	)
	if err != nil {
		fail("new simple consumer: %v", err)
	}
	if err := consumer.Start(); err != nil {
		fail("start simple consumer: %v", err)
	}
	got := make(map[string]int, n)
	deadline := time.Now().Add(90 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		views, err := consumer.Receive(ctx, 32, 20*time.Second)
		if err != nil {
			var status *rmq.ErrRpcStatus
			if errors.As(err, &status) && status.GetCode() == int32(v2.Code_MESSAGE_NOT_FOUND) {
				continue
			}
			fmt.Fprintf(os.Stderr, "receive: %v\n", err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for _, view := range views {
			got[string(view.GetBody())]++
			if err := consumer.Ack(ctx, view); err != nil {
				fail("ack %s: %v", view.GetMessageId(), err)
			}
		}
	}
	if err := consumer.GracefulStop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop simple consumer: %v\n", err)
	}

	duplicates, missing := 0, 0
	for _, count := range got {
		if count > 1 {
			duplicates++
		}
	}
	for body := range sent {
		if got[body] == 0 {
			missing++
		}
	}
	fmt.Printf("received %d duplicates %d missing %d\n", len(got), duplicates, missing)
	if duplicates != 0 || missing != 0 {
		os.Exit(1)
	}
}
