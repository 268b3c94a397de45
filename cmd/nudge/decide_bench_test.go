package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"

	"github.com/nudgehq/nudge/serve"
)

// BenchmarkDecide is the whole in-process decision (serve.Server.Decide): the session's live
// vector read from the on-disk Badger store (~4,600 simulated sessions), the promoted GBDT
// propensity model and the T-learner uplift model (GBDT per arm, 3 interventions) scored, the
// demo site's policy (eligibility, caps, budget, holdout, exploration) applied, and the
// decision queued for the decision log (written and fsynced by the store's writer goroutine,
// which runs concurrently). The propensity model is the pipeline's default GBDT (up to 300
// trees of depth 6, Platt-calibrated); "warm-logistic" swaps in a logistic one to show the
// cost of the rest of the path. "warm": the store that ingested the sessions (the decide path
// reads them from the caches the writer fills, as for live sessions); "cold": the store
// reopened, so every read is a Badger transaction.
//
//	go test -run XXX -bench Decide -benchtime 20000x ./cmd/nudge
func BenchmarkDecide(b *testing.B) {
	f, err := buildDecideFixture(context.Background(), b.TempDir(), 2500, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name           string
		warm, logistic bool
	}{{"warm", true, false}, {"warm-logistic", true, true}, {"cold", false, false}} {
		b.Run(bc.name, func(b *testing.B) {
			env := f.env
			if !bc.warm {
				f.env.close()
				if env, err = openDecideEnv(ctx, f.cfg, f.dir, 0); err != nil {
					b.Fatal(err)
				}
				f.env = env
			}
			// The demo policy without its daily budget, which the benchmark would exhaust (after
			// which nothing is eligible and decisions get cheaper); caps per session still apply.
			pol := f.cfg.Sites[0].Policy
			pol.Budget = config.Budget{}
			if err := env.live.SetPolicy("demo", pol); err != nil {
				b.Fatal(err)
			}
			want := f.versions
			if bc.logistic {
				// The promoted uplift model with the logistic propensity model instead of the GBDT.
				m, err := modelLoader{env.st}.LoadPromoted(ctx, "demo")
				if err != nil {
					b.Fatal(err)
				}
				m.Propensity, m.PropensityVersion = f.logistic, 99
				if err := env.live.Set("demo", m); err != nil {
					b.Fatal(err)
				}
				defer env.live.Reload(ctx, "demo")
				want[0] = 99
			}
			if p, u := env.live.Versions("demo"); p != want[0] || u != want[1] {
				b.Fatalf("live versions %d %d, want %v", p, u, want)
			}
			reqs := make([]serve.DecideRequest, len(f.sessions))
			for i, s := range f.sessions {
				reqs[i] = serve.DecideRequest{SessionID: s, Page: "/cart"}
			}
			var res serve.DecideResult
			treated := 0
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := env.srv.Decide(ctx, "demo", &reqs[i%len(reqs)], &res); err != nil {
					b.Fatal(err)
				}
				if !res.Known || res.Uplift == nil {
					b.Fatalf("decision without session or uplift: %+v", res)
				}
				if res.Intervene {
					treated++
				}
			}
			b.StopTimer()
			// CPU time of the whole process (decide path, writer goroutine, GC) per decision:
			// steadier than ns/op on a shared machine.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(treated)/float64(b.N), "treated/op")
		})
	}
	f.env.close()
}

// processCPU returns the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
