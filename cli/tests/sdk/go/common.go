// What the Go SDK scenarios share: the SDK set up for Tern (plain-text
// gRPC, its own log on stdout at WARN level), started clients of one
// endpoint, and a receive that treats "no message" as an empty batch.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// setUpSDK makes the SDK log warnings and errors to stdout, so a failure
// shows why. The SDK keeps its default transport, TLS (not checking the
// certificate), which Tern serves next to plaintext on the same port.
func setUpSDK() {
	os.Setenv(rmq.ENABLE_CONSOLE_APPENDER, "true")
	os.Setenv(rmq.CLIENT_LOG_LEVEL, "warn")
	rmq.ResetLogger()
}

// sessionCredentials are the credentials the clients sign their requests
// with: TERN_SDK_ACCESS_KEY and TERN_SDK_SECRET_KEY, none when unset.
func sessionCredentials() *credentials.SessionCredentials {
	return &credentials.SessionCredentials{
		AccessKey:    os.Getenv("TERN_SDK_ACCESS_KEY"),
		AccessSecret: os.Getenv("TERN_SDK_SECRET_KEY"),
	}
}

// startProducer starts a producer of topic on endpoint; opts add options
// (e.g. a transaction checker).
func startProducer(endpoint, topic string, opts ...rmq.ProducerOption) rmq.Producer {
	opts = append([]rmq.ProducerOption{rmq.WithTopics(topic)}, opts...)
	producer, err := rmq.NewProducer(
		&rmq.Config{Endpoint: endpoint, Credentials: sessionCredentials()}, opts...)
	if err != nil {
		fail("new producer: %v", err)
	}
	if err := producer.Start(); err != nil {
		fail("start producer: %v", err)
	}
	return producer
}

// startConsumer starts a SimpleConsumer of group subscribed to topic with
// filter, long polling at most await per receive. (The SDK's receive
// request names no long-polling time, so the broker polls until the call's
// deadline, await plus the SDK's 3 s request timeout, less a reserve; it
// refuses less than 5 s of polling, so await must be more than 2 s.)
func startConsumer(endpoint, group, topic string, filter *rmq.FilterExpression,
	await time.Duration) rmq.SimpleConsumer {
	consumer, err := rmq.NewSimpleConsumer(
		&rmq.Config{Endpoint: endpoint, ConsumerGroup: group,
			Credentials: sessionCredentials()},
		rmq.WithSimpleAwaitDuration(await),
		rmq.WithSimpleSubscriptionExpressions(map[string]*rmq.FilterExpression{topic: filter}),
	)
	if err != nil {
		fail("new simple consumer: %v", err)
	}
	if err := consumer.Start(); err != nil {
		fail("start simple consumer: %v", err)
	}
	return consumer
}

// receive asks for up to max messages, invisible for invisible once
// received. MESSAGE_NOT_FOUND (the long poll ended empty) is an empty batch
// and no error; any other error is returned.
func receive(consumer rmq.SimpleConsumer, max int32, invisible time.Duration) ([]*rmq.MessageView, error) {
	views, err := consumer.Receive(context.Background(), max, invisible)
	var status *rmq.ErrRpcStatus
	if err != nil && errors.As(err, &status) && status.GetCode() == int32(v2.Code_MESSAGE_NOT_FOUND) {
		return nil, nil
	}
	return views, err
}

// receiveOrWait is receive that reports other errors on stderr and waits
// half a second after them, for loops that try again.
func receiveOrWait(consumer rmq.SimpleConsumer, max int32, invisible time.Duration) []*rmq.MessageView {
	views, err := receive(consumer, max, invisible)
	if err != nil {
		fmt.Fprintf(os.Stderr, "receive: %v\n", err)
		time.Sleep(500 * time.Millisecond)
		return nil
	}
	return views
}

// ack acknowledges view or ends the program.
func ack(consumer rmq.SimpleConsumer, view *rmq.MessageView) {
	if err := consumer.Ack(context.Background(), view); err != nil {
		fail("ack %s: %v", view.GetMessageId(), err)
	}
}

// stopClients stops the given producers and consumers, reporting failures
// on stderr.
func stopClients(clients ...interface{ GracefulStop() error }) {
	for _, c := range clients {
		if err := c.GracefulStop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop client: %v\n", err)
		}
	}
}

// tally counts the bodies received more than once and the wanted bodies
// never received; got maps each received body to its count.
func tally[V any](got map[string]int, want map[string]V) (duplicates, missing int) {
	for _, count := range got {
		if count > 1 {
			duplicates++
		}
	}
	for body := range want {
		if got[body] == 0 {
			missing++
		}
	}
	return duplicates, missing
}
