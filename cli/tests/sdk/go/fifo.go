// FIFO order per message group with the official Go SDK, run instead of
// the default scenario when TERN_GO_SCENARIO=fifo.
// Arguments: ENDPOINT TOPIC GROUP GROUPS PER_GROUP.
//
//  1. The producer sends PER_GROUP messages to each of GROUPS message groups
//     (body "<group>:<seq>", message group "group-<group>"), one send per
//     group in flight at a time, so each group's send order is its sequence
//     order.
//  2. Two SimpleConsumers of the consumer group GROUP (which must be a FIFO
//     one) receive concurrently and leave about 5% of the messages
//     unacknowledged the first time they see them; those come back after the
//     invisible duration. Checked for every received message: it carries its
//     message group and is the first not yet acknowledged message of its
//     group. At the end each group's acknowledged sequence must be exactly
//     0..PER_GROUP-1, and a last receive must get nothing.
//
// Prints "fifo ok <bool> ..." and exits 0 only if all of that holds.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

const (
	fifoInvisible = 3 * time.Second  // how long a received message stays invisible
	fifoDeadline  = 40 * time.Second // for the whole consumption
)

func init() {
	if os.Getenv("TERN_GO_SCENARIO") != "fifo" {
		return
	}
	if len(os.Args) != 6 {
		fail("usage: TERN_GO_SCENARIO=fifo %s ENDPOINT TOPIC GROUP GROUPS PER_GROUP", os.Args[0])
	}
	groups, err1 := strconv.Atoi(os.Args[4])
	perGroup, err2 := strconv.Atoi(os.Args[5])
	if err1 != nil || err2 != nil || groups <= 0 || perGroup <= 0 {
		fail("GROUPS and PER_GROUP must be positive numbers, not %q %q", os.Args[4], os.Args[5])
	}
	if !runFifo(os.Args[1], os.Args[2], os.Args[3], groups, perGroup) {
		os.Exit(1)
	}
	os.Exit(0)
}

// fifoRetried says whether the consumers leave (group, seq) unacknowledged
// the first time they receive it.
func fifoRetried(g, seq int) bool {
	return (g*131+seq*17)%20 == 0
}

func sendGroups(endpoint, topic string, groups, perGroup int) {
	producer := startProducer(endpoint, topic)
	started := time.Now()
	for seq := 0; seq < perGroup; seq++ {
		var wg sync.WaitGroup
		errs := make([]error, groups)
		for g := 0; g < groups; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("%d:%d", g, seq))}
				msg.SetTag("fifo")
				msg.SetKeys(fmt.Sprintf("%d-%d", g, seq))
				msg.SetMessageGroup(fmt.Sprintf("group-%d", g))
				receipts, err := producer.Send(context.Background(), msg)
				if err == nil && (len(receipts) != 1 || receipts[0].MessageID == "") {
					err = fmt.Errorf("no message id in %+v", receipts)
				}
				errs[g] = err
			}()
		}
		wg.Wait()
		for g, err := range errs {
			if err != nil {
				fail("send %d:%d: %v", g, seq, err)
			}
		}
	}
	stopClients(producer)
	fmt.Printf("sent %d in %d ms\n", groups*perGroup, time.Since(started).Milliseconds())
}

// fifoGroup is what the consumers saw of one message group. Its lock is
// held from the check of a message through its ack, so a consumer that
// receives the group's next message checks it only after the previous
// one's ack was recorded.
type fifoGroup struct {
	mu       sync.Mutex
	expected int   // the first sequence number not yet acknowledged
	acked    []int // sequence numbers in the order they were acknowledged
}

type fifoChecker struct {
	perGroup int
	groups   []fifoGroup

	mu          sync.Mutex // guards the fields below
	violations  []string
	received    int
	redelivered int
	leftUnacked int
}

func (c *fifoChecker) done() bool {
	for i := range c.groups {
		g := &c.groups[i]
		g.mu.Lock()
		short := g.expected < c.perGroup
		g.mu.Unlock()
		if short {
			return false
		}
	}
	return true
}

func (c *fifoChecker) violation(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violations = append(c.violations, fmt.Sprintf(format, args...))
}

func (c *fifoChecker) handle(consumer rmq.SimpleConsumer, view *rmq.MessageView) {
	body := string(view.GetBody())
	var g, seq int
	if _, err := fmt.Sscanf(body, "%d:%d", &g, &seq); err != nil || g < 0 || g >= len(c.groups) {
		c.violation("unexpected body %q", body)
		return
	}
	attempt := view.GetDeliveryAttempt()
	c.mu.Lock()
	c.received++
	if attempt > 1 {
		c.redelivered++
	}
	c.mu.Unlock()
	if mg := view.GetMessageGroup(); mg == nil || *mg != fmt.Sprintf("group-%d", g) {
		c.violation("%s has message group %v", body, mg)
	}

	group := &c.groups[g]
	group.mu.Lock()
	defer group.mu.Unlock()
	if seq != group.expected {
		c.violation("group %d: got %d (attempt %d) while %d is not acked", g, seq, attempt, group.expected)
		return
	}
	if attempt == 1 && fifoRetried(g, seq) {
		c.mu.Lock()
		c.leftUnacked++
		c.mu.Unlock()
		return
	}
	ack(consumer, view)
	group.acked = append(group.acked, seq)
	group.expected = seq + 1
}

func fifoConsume(endpoint, topic, group string, c *fifoChecker, errs chan<- error) {
	consumer := startConsumer(endpoint, group, topic, rmq.SUB_ALL, 5*time.Second)
	defer stopClients(consumer)
	deadline := time.Now().Add(fifoDeadline)
	for !c.done() && time.Now().Before(deadline) {
		views, err := receive(consumer, 32, fifoInvisible)
		if err != nil {
			errs <- err
			return
		}
		// In receive order: a batch may hold several messages of a group.
		for _, view := range views {
			c.handle(consumer, view)
		}
	}
}

func runFifo(endpoint, topic, group string, groups, perGroup int) bool {
	setUpSDK()
	sendGroups(endpoint, topic, groups, perGroup)

	c := &fifoChecker{perGroup: perGroup, groups: make([]fifoGroup, groups)}
	errs := make(chan error, 2)
	started := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fifoConsume(endpoint, topic, group, c, errs)
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	close(errs)
	var failures []string
	for err := range errs {
		failures = append(failures, err.Error())
	}

	// Nothing more may come: everything was acknowledged. (Tern answers a
	// receive from all queues of the topic, whichever one the SDK names.)
	late := startConsumer(endpoint, group, topic, rmq.SUB_ALL, 5*time.Second)
	views, err := receive(late, 32, fifoInvisible)
	if err != nil {
		failures = append(failures, "last receive: "+err.Error())
	}
	var extra []string
	for _, view := range views {
		extra = append(extra, string(view.GetBody()))
	}
	stopClients(late)

	var wrong []int
	for g := range c.groups {
		acked := c.groups[g].acked
		inOrder := len(acked) == perGroup
		for i := 0; inOrder && i < perGroup; i++ {
			inOrder = acked[i] == i
		}
		if !inOrder {
			wrong = append(wrong, g)
		}
	}
	wantUnacked := 0
	for g := 0; g < groups; g++ {
		for seq := 0; seq < perGroup; seq++ {
			if fifoRetried(g, seq) {
				wantUnacked++
			}
		}
	}
	ok := len(c.violations) == 0 && len(wrong) == 0 && len(failures) == 0 && len(extra) == 0 &&
		wantUnacked > 0 && c.leftUnacked == wantUnacked && c.redelivered >= wantUnacked
	fmt.Printf("consumed in %d ms: received %d, left unacked %d of %d, redelivered %d, "+
		"violations %d [%s], groups out of order or short %v, failures %v, extra %v\n",
		elapsed.Milliseconds(), c.received, c.leftUnacked, wantUnacked, c.redelivered,
		len(c.violations), strings.Join(first(c.violations, 5), "; "), first(wrong, 5),
		first(failures, 3), first(extra, 5))
	fmt.Printf("fifo ok %t\n", ok)
	return ok
}

// first is at most the first n elements of s.
func first[T any](s []T, n int) []T {
	return s[:min(n, len(s))]
}
