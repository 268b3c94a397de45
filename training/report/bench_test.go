package report

import (
	"context"
	"testing"
	"time"
)

// BenchmarkBuild builds the whole report on a store of `nudge demo`'s default size (1,500
// visitors over 21 days of simulated demo-shop traffic, every decision logged with uplift
// scores; 30% holdout, 50% exploration) over the whole range. It reports the events and
// sessions read per second of Build (the scan reads the look-back and the outcome window
// too, so these are the logged events in the store, not only those in the range).
//
//	go test -run XXX -bench Build -benchtime 10x ./training/report
func BenchmarkBuild(b *testing.B) {
	st, site, res, _ := simulateStore(b, 5, 1500, 21)
	ctx := context.Background()
	var r *Report
	var err error
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if r, err = Build(ctx, st, site, Query{}); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(res.Events)*float64(b.N)/el, "events/s")
	b.ReportMetric(float64(res.Sessions)*float64(b.N)/el, "sessions/s")
	b.ReportMetric(1000*el/float64(b.N), "ms/build")
	if r.Overview.Sessions.Value == 0 || len(r.Lift) == 0 || len(r.Impact.ByBudget) == 0 {
		b.Fatalf("empty report: %+v", r.Overview)
	}
	b.Logf("%d events, %d sessions, %d decisions in the store", res.Events, res.Sessions, len(res.Decisions))
}
