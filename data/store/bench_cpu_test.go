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
	ctx := context.Background()
	const batchSize = 100
	batches := make([][]features.Event, b.N)
	for k := range batches {
		var evs []features.Event
		for j := range 5 {
			evs = append(evs, benchSession(k*5+j, 20, max(1, (b.N*5)*3/4), fmt.Sprint("b", k, "-"))...)
		}
		batches[k] = evs[:batchSize]
	}
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
