// Transactional messages with the official Go producer, run instead of the
// default scenario when TERN_GO_SCENARIO=txn. Arguments: ENDPOINT TOPIC
// GROUP. A producer with a TransactionChecker commits one transaction,
// rolls one back and leaves one orphaned (neither); the broker must ask the
// checker about the orphan, which commits it. A SimpleConsumer must then
// receive the committed one, the orphan and a later committed marker, and
// (after a few more seconds) never the rolled-back one. The result is the
// line `go txn ok <bool> committed <bool> rolled_back_absent <bool>
// orphan_checked <bool>`.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

func init() {
	if os.Getenv("TERN_GO_SCENARIO") != "txn" {
		return
	}
	if len(os.Args) != 4 {
		fail("usage: TERN_GO_SCENARIO=txn %s ENDPOINT TOPIC GROUP", os.Args[0])
	}
	if !runTxn(os.Args[1], os.Args[2], os.Args[3]) {
		os.Exit(1)
	}
	os.Exit(0)
}

// asked remembers the bodies the checker was asked about.
type asked struct {
	mu     sync.Mutex
	bodies []string
}

func (a *asked) add(body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bodies = append(a.bodies, body)
}

func (a *asked) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.bodies...)
}

func runTxn(endpoint, topic, group string) bool {
	setUpSDK()
	ctx := context.Background()
	checked := &asked{}
	checker := &rmq.TransactionChecker{
		Check: func(mv *rmq.MessageView) rmq.TransactionResolution {
			body := string(mv.GetBody())
			checked.add(body)
			fmt.Printf("checker asked about %s (%s)\n", body, mv.GetMessageId())
			if strings.HasPrefix(body, "orphan-") {
				return rmq.COMMIT
			}
			return rmq.ROLLBACK
		},
	}
	producer := startProducer(endpoint, topic, rmq.WithTransactionChecker(checker))
	half := func(body string) rmq.Transaction {
		msg := &rmq.Message{Topic: topic, Body: []byte(body)}
		msg.SetTag("txn")
		tx := producer.BeginTransaction()
		receipts, err := producer.SendWithTransaction(ctx, msg, tx)
		if err != nil {
			fail("send %s: %v", body, err)
		}
		if len(receipts) != 1 || receipts[0].TransactionId == "" {
			fail("send %s: no transaction id in %+v", body, receipts)
		}
		return tx
	}
	if err := half("commit-go").Commit(); err != nil {
		fail("commit: %v", err)
	}
	if err := half("rollback-go").RollBack(); err != nil {
		fail("rollback: %v", err)
	}
	half("orphan-go")
	if err := half("marker-go").Commit(); err != nil {
		fail("commit marker: %v", err)
	}

	consumer := startConsumer(endpoint, group, topic, rmq.SUB_ALL, 5*time.Second)
	seen := map[string]int{}
	receiveUntil := func(done func() bool, deadline time.Time) {
		for !done() && time.Now().Before(deadline) {
			for _, view := range receiveOrWait(consumer, 16, 15*time.Second) {
				body := string(view.GetBody())
				seen[body]++
				fmt.Printf("received %s\n", body)
				ack(consumer, view)
			}
		}
	}
	receiveUntil(func() bool {
		return seen["commit-go"] > 0 && seen["orphan-go"] > 0 && seen["marker-go"] > 0
	}, time.Now().Add(60*time.Second))
	// The rolled-back one must not come, not even a few seconds later.
	receiveUntil(func() bool { return false }, time.Now().Add(6*time.Second))
	stopClients(consumer, producer)

	askedAbout := checked.list()
	orphanAsked, othersAsked := false, false
	for _, b := range askedAbout {
		if b == "orphan-go" {
			orphanAsked = true
		} else {
			othersAsked = true
		}
	}
	committed := seen["commit-go"] == 1 && seen["marker-go"] == 1
	absent := seen["rollback-go"] == 0
	orphan := orphanAsked && seen["orphan-go"] == 1
	ok := committed && absent && orphan && !othersAsked
	fmt.Printf("seen %v checker asked %v\n", seen, askedAbout)
	fmt.Printf("go txn ok %t committed %t rolled_back_absent %t orphan_checked %t\n",
		ok, committed, absent, orphan)
	return ok
}
