// SQL92 filters with the official Go SDK, run instead of the default
// scenario when TERN_GO_SCENARIO=sql. Arguments: ENDPOINT TOPIC N.
//
// The producer sends N messages with the user properties n (their number)
// and color (red for every third, else blue) and the tag even or odd.
// SimpleConsumers subscribed with
// NewFilterExpressionWithType(expression, SQL92) must each receive exactly
// the matching messages, once each, and a malformed expression must be
// refused with a status naming the problem. The result is the line
// `sql filters ok <bool> refused <bool>`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

func init() {
	if os.Getenv("TERN_GO_SCENARIO") != "sql" {
		return
	}
	if len(os.Args) != 4 {
		fail("usage: TERN_GO_SCENARIO=sql %s ENDPOINT TOPIC N", os.Args[0])
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n <= 0 {
		fail("N must be a positive number, not %q", os.Args[3])
	}
	if !runSQL(os.Args[1], os.Args[2], n) {
		os.Exit(1)
	}
	os.Exit(0)
}

func sqlColor(i int) string {
	if i%3 == 0 {
		return "red"
	}
	return "blue"
}

// sqlReceiveAll receives and acks with an SQL92 subscription until want
// arrived (or 40 s passed), then once more to see that nothing else comes;
// it says whether exactly want arrived, once each.
func sqlReceiveAll(endpoint, group, topic, expression string, want map[string]bool) bool {
	consumer := startConsumer(endpoint, group, topic,
		rmq.NewFilterExpressionWithType(expression, rmq.SQL92), 5*time.Second)
	got := map[string]int{}
	deadline := time.Now().Add(40 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		for _, view := range receiveOrWait(consumer, 32, 20*time.Second) {
			got[string(view.GetBody())]++
			ack(consumer, view)
		}
	}
	for _, view := range receiveOrWait(consumer, 32, 20*time.Second) {
		got[string(view.GetBody())]++
	}
	stopClients(consumer)

	var extra, missing, duplicates []string
	for body, count := range got {
		if !want[body] {
			extra = append(extra, body)
		}
		if count > 1 {
			duplicates = append(duplicates, body)
		}
	}
	for body := range want {
		if got[body] == 0 {
			missing = append(missing, body)
		}
	}
	slices.Sort(extra)
	slices.Sort(missing)
	slices.Sort(duplicates)
	fmt.Printf("%s: %q received %d of %d extra %v missing %v duplicates %v\n",
		group, expression, len(got), len(want), extra, missing, duplicates)
	return len(extra) == 0 && len(missing) == 0 && len(duplicates) == 0
}

// sqlBadFilterRefused says whether a receive with a malformed SQL92
// expression fails with a status that names the expression and the problem.
func sqlBadFilterRefused(endpoint, topic string) bool {
	const bad = "n >= AND"
	consumer := startConsumer(endpoint, "go-sql-bad", topic,
		rmq.NewFilterExpressionWithType(bad, rmq.SQL92), 5*time.Second)
	defer stopClients(consumer)
	_, err := consumer.Receive(context.Background(), 32, 20*time.Second)
	var status *rmq.ErrRpcStatus
	if err == nil || !errors.As(err, &status) {
		fmt.Printf("bad filter: no status error but %v\n", err)
		return false
	}
	fmt.Printf("bad filter: code %d: %s\n", status.GetCode(), status.GetMessage())
	return strings.Contains(status.GetMessage(), "column") && strings.Contains(status.GetMessage(), bad)
}

func runSQL(endpoint, topic string, n int) bool {
	setUpSDK()

	producer := startProducer(endpoint, topic)
	for i := 0; i < n; i++ {
		msg := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("go-%d", i))}
		if i%2 == 0 {
			msg.SetTag("even")
		} else {
			msg.SetTag("odd")
		}
		msg.AddProperty("n", strconv.Itoa(i))
		msg.AddProperty("color", sqlColor(i))
		receipts, err := producer.Send(context.Background(), msg)
		if err != nil {
			fail("send %d: %v", i, err)
		}
		if len(receipts) != 1 || receipts[0].MessageID == "" {
			fail("send %d: no message id in %+v", i, receipts)
		}
	}
	stopClients(producer)
	fmt.Printf("sent %d\n", n)

	wanted := func(match func(i int) bool) map[string]bool {
		want := map[string]bool{}
		for i := 0; i < n; i++ {
			if match(i) {
				want[fmt.Sprintf("go-%d", i)] = true
			}
		}
		return want
	}
	ok := sqlReceiveAll(endpoint, "go-sql-red", topic, "n >= 10 AND color = 'red'",
		wanted(func(i int) bool { return i >= 10 && sqlColor(i) == "red" }))
	ok = sqlReceiveAll(endpoint, "go-sql-tags", topic,
		"TAGS = 'odd' AND n NOT BETWEEN 5 AND 25 OR n IN ('2', '4')",
		wanted(func(i int) bool { return (i%2 == 1 && (i < 5 || i > 25)) || i == 2 || i == 4 })) && ok
	refused := sqlBadFilterRefused(endpoint, topic)
	fmt.Printf("sql filters ok %t refused %t\n", ok, refused)
	return ok && refused
}
