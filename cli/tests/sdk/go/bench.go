// A throughput run with the official Go producer, run instead of the default
// scenario when TERN_GO_SCENARIO=bench: scripts/bench-compare's cross-check
// that `tern bench produce` measures what an official SDK would. Arguments:
// ENDPOINT TOPIC WARMUP_S DURATION_S INFLIGHT SIZE [BROKER_PID].
//
// INFLIGHT goroutines each send SIZE-byte messages (tag `bench`) with
// Producer.Send, one after the other, for WARMUP_S seconds not measured, then
// DURATION_S seconds measured: a closed loop of INFLIGHT sends in flight, as
// `tern bench produce --inflight INFLIGHT` on one connection (the SDK keeps
// one connection per endpoint). A send counts if it started in the measured
// window and succeeded; the window lasts until the last such send returned.
// The SDK retries nothing (max attempts 1), as tern bench. The result is one
// JSON line: messages, elapsed_s, msg_per_s, errors, send latency p50/p99 in
// milliseconds, the process's CPU time per measured message and, given
// BROKER_PID, the broker's (utime + stime of /proc/PID/stat over the window,
// in ticks of 10 ms), to compare with what tern bench reports.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

func init() {
	if os.Getenv("TERN_GO_SCENARIO") != "bench" {
		return
	}
	if len(os.Args) != 7 && len(os.Args) != 8 {
		fail("usage: TERN_GO_SCENARIO=bench %s ENDPOINT TOPIC WARMUP_S DURATION_S INFLIGHT SIZE [BROKER_PID]", os.Args[0])
	}
	brokerPid := 0
	if len(os.Args) == 8 {
		pid, err := strconv.Atoi(os.Args[7])
		if err != nil || pid <= 0 {
			fail("BROKER_PID must be a process id, not %q", os.Args[7])
		}
		brokerPid = pid
	}
	var nums [4]int
	for i := range nums {
		n, err := strconv.Atoi(os.Args[3+i])
		if err != nil || n < 0 || (i > 0 && n == 0) {
			fail("WARMUP_S DURATION_S INFLIGHT SIZE must be numbers (all but WARMUP_S positive), not %q", os.Args[3+i])
		}
		nums[i] = n
	}
	runBench(os.Args[1], os.Args[2], time.Duration(nums[0])*time.Second,
		time.Duration(nums[1])*time.Second, nums[2], nums[3], brokerPid)
	os.Exit(0)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (utime + stime) of process pid, from
// /proc/PID/stat, counted in ticks of 10 ms (USER_HZ is 100 on Linux); -1
// when it cannot be read.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command name, which ends with the last ')'.
	text := string(data)
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return -1
	}
	fields := strings.Fields(text[end+1:])
	// utime and stime are fields 14 and 15 of the line, 12 and 13 here.
	if len(fields) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func runBench(endpoint, topic string, warmup, duration time.Duration, inflight, size, brokerPid int) {
	setUpSDK()
	// Plaintext, as tern bench speaks, so the two cost the same transport.
	rmq.EnableSsl = false
	producer := startProducer(endpoint, topic, rmq.WithMaxAttempts(1))
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}

	start := time.Now()
	windowStart := start.Add(warmup)
	end := windowStart.Add(duration)
	var cpu0, broker0 time.Duration
	cpuTaken := make(chan struct{})
	go func() {
		time.Sleep(time.Until(windowStart))
		cpu0 = cpuTime()
		if brokerPid > 0 {
			broker0 = procCPU(brokerPid)
		}
		close(cpuTaken)
	}()

	type result struct {
		latencies []time.Duration
		errors    int
		last      time.Time
	}
	results := make([]result, inflight)
	var wg sync.WaitGroup
	for g := 0; g < inflight; g++ {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			for {
				t := time.Now()
				if !t.Before(end) {
					return
				}
				msg := &rmq.Message{Topic: topic, Body: body}
				msg.SetTag("bench")
				_, err := producer.Send(context.Background(), msg)
				done := time.Now()
				if t.Before(windowStart) {
					continue
				}
				if err != nil {
					r.errors++
				} else {
					r.latencies = append(r.latencies, done.Sub(t))
				}
				if done.After(r.last) {
					r.last = done
				}
			}
		}(&results[g])
	}
	wg.Wait()
	<-cpuTaken
	cpu := cpuTime() - cpu0
	broker := time.Duration(-1)
	if brokerPid > 0 {
		if b := procCPU(brokerPid); b >= 0 && broker0 >= 0 {
			broker = b - broker0
		}
	}
	stopClients(producer)

	var all []time.Duration
	errors := 0
	last := end
	for _, r := range results {
		all = append(all, r.latencies...)
		errors += r.errors
		if r.last.After(last) {
			last = r.last
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000
	}
	elapsed := last.Sub(windowStart).Seconds()
	out := map[string]any{
		"sdk":            "go " + sdkVersion,
		"messages":       len(all),
		"errors":         errors,
		"elapsed_s":      elapsed,
		"msg_per_s":      float64(len(all)) / elapsed,
		"send_p50_ms":    pct(0.50),
		"send_p99_ms":    pct(0.99),
		"inflight":       inflight,
		"size":           size,
		"cpu_s":          cpu.Seconds(),
		"cpu_us_per_msg": 0.0,
	}
	if len(all) > 0 {
		out["cpu_us_per_msg"] = float64(cpu.Microseconds()) / float64(len(all))
	}
	if broker >= 0 {
		out["broker_pid"] = brokerPid
		out["broker_cpu_s"] = broker.Seconds()
		if len(all) > 0 {
			out["broker_us_per_msg"] = float64(broker.Microseconds()) / float64(len(all))
		}
	}
	line, err := json.Marshal(out)
	if err != nil {
		fail("encode: %v", err)
	}
	fmt.Println(string(line))
}

// sdkVersion is the SDK this program is built with (go.mod pins it).
const sdkVersion = "rocketmq-clients/golang v5.1.4"
