package store

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

// BenchmarkAppendCPU is the writer's CPU cost per event without the fsync and without
// concurrency (so it is far less noisy on a shared machine than BenchmarkAppend): one caller
// appends batches of 100 events (5 sessions of 20, a quarter of the visitors returning) to an
// in-memory store. Metrics: ns/event (wall) and cpu-ns/event (user+system CPU time of the
// whole process, Badger's goroutines and the GC included: the figure that matters when the
// machine's cores are the limit, and the one that is stable under other load).
func BenchmarkAppendCPU(b *testing.B) {
	const batchSize = 100
	batches := make([][]features.Event, b.N)
	for k := range batches {
		var evs []features.Event
		for j := range 5 {
			evs = append(evs, benchSession(k*5+j, 20, max(1, (b.N*5)*3/4), fmt.Sprint("b", k, "-"))...)
		}
		batches[k] = evs[:batchSize]
	}
	benchAppendCPU(b, batches)
}

// BenchmarkAppendCPUIngest is BenchmarkAppendCPU on the events `nudge bench ingest` sends
// (cmd/nudge benchBodies): sessions of 20 events, 5 per batch of 100, each visitor's 3
// sessions one after the other (so a returning visitor's earlier session is mostly in the
// same or the previous batch), every event with two props.
func BenchmarkAppendCPUIngest(b *testing.B) {
	const batchSize = 100
	batches := make([][]features.Event, b.N)
	for k := range batches {
		evs := make([]features.Event, batchSize)
		for j := range evs {
			i := k*batchSize + j
			sess, n := i/20, i%20
			ev := features.Event{
				EventID: fmt.Sprint("e", i), SessionID: fmt.Sprint("s", sess),
				AnonymousID: fmt.Sprint("v", sess/3), Type: features.PageView,
				TS:      t0 + int64(sess%3000)*sec + int64(n)*sec,
				Consent: true,
				Props:   map[string]string{"path": fmt.Sprint("/p/", n), "device": "desktop"},
			}
			switch {
			case n == 19 && sess%7 == 0:
				ev.Type, ev.Name = features.MacroConversion, "purchase"
			case n == 12:
				ev.Type, ev.Name = features.MicroConversion, "add_to_cart"
			case n%3 == 2:
				ev.Type, ev.Name = features.Click, "product_tile"
			}
			evs[j] = ev
		}
		batches[k] = evs
	}
	benchAppendCPU(b, batches)
}

// benchAppendCPU appends the batches one after the other (b.N of them, 100 events each) to an
// in-memory store and reports ns/event and cpu-ns/event.
func benchAppendCPU(b *testing.B, batches [][]features.Event) {
	ctx := context.Background()
	const batchSize = 100
	s := openStore(b, "", nil)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for k := range b.N {
		if _, err := s.Append(ctx, "site", batches[k]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/event")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batchSize), "cpu-ns/event")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
