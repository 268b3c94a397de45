package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/model/policy"

	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/training/uplift"
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
		if !bc.warm {
			// the parts on the warm store, before it is reopened
			b.Run("parts", func(b *testing.B) { benchDecideParts(b, f, true) })
		}
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
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := processCPU()
			th0, thOK := threadCPU()
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
			// steadier than ns/op on a shared machine; and of the deciding thread alone (the
			// decide path, GC assists included), steadier still when the machine is busy.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if th1, ok := threadCPU(); ok && thOK {
				b.ReportMetric(float64((th1-th0).Nanoseconds())/float64(b.N), "thread-cpu-ns/op")
			}
			b.ReportMetric(float64(treated)/float64(b.N), "treated/op")
		})
	}
	b.Run("cold-parts", func(b *testing.B) { benchDecideParts(b, f, false) })
	f.env.close()
}

// benchDecideParts times the parts of the decision one by one on the fixture's store and
// promoted models, for the breakdown of BenchmarkDecide: the store's live read (from the
// caches on the warm store; a Badger transaction on the reopened one), and with all, the
// propensity model, the uplift model (all arms), the policy, and the decision log's handoff
// (LogDecision of a fresh record; the writer goroutine's work shows in cpu-ns/op). The
// models' shapes are logged.
func benchDecideParts(b *testing.B, f *decideFixture, all bool) {
	ctx := context.Background()
	env := f.env
	site := &f.cfg.Sites[0]
	sch, err := schemas(f.cfg)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := sch(site.ID)
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, fn func(i int)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := processCPU()
			th0, thOK := threadCPU()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				fn(i)
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if th1, ok := threadCPU(); ok && thOK {
				b.ReportMetric(float64((th1-th0).Nanoseconds())/float64(b.N), "thread-cpu-ns/op")
			}
		})
	}
	out := make([]float64, sc.Len())
	now := time.Now().UnixMilli()
	run("read", func(i int) {
		if _, _, err := env.st.LiveSession(ctx, site.ID, f.sessions[i%len(f.sessions)], now, out); err != nil {
			b.Fatal(err)
		}
	})
	if !all {
		return
	}
	m, err := modelLoader{env.st}.LoadPromoted(ctx, site.ID)
	if err != nil {
		b.Fatal(err)
	}
	vecs := make([][]float64, len(f.sessions))
	for i, s := range f.sessions {
		vecs[i] = make([]float64, sc.Len())
		if _, _, err := env.st.LiveSession(ctx, site.ID, s, time.Now().UnixMilli(), vecs[i]); err != nil {
			b.Fatal(err)
		}
	}
	nArms := len(m.Uplift.Arms()) - 1
	shape := func(name string, bm any) {
		if c, ok := bm.(*model.Calibrated); ok {
			bm = c.Base
		}
		if e, ok := bm.(*model.Ensemble); ok {
			b.Logf("%s: %d trees, %d nodes", name, e.NumTrees(), len(e.Feature))
		}
	}
	shape("propensity", m.Propensity)
	if t, ok := m.Uplift.(*uplift.TModel); ok {
		for k, o := range t.Outcome {
			shape("uplift arm "+t.Arms()[k], o)
		}
	}
	run("propensity", func(i int) {
		if _, err := m.Propensity.Score(vecs[i%len(vecs)]); err != nil {
			b.Fatal(err)
		}
	})
	upl := make([]float64, nArms)
	run("uplift", func(i int) {
		if err := m.Uplift.Predict(vecs[i%len(vecs)], upl); err != nil {
			b.Fatal(err)
		}
	})
	params, ivs := serve.PolicyParams(site, func() config.Policy { p := site.Policy; p.Budget = config.Budget{}; return p }())
	pol, err := policy.New(sc, params, ivs)
	if err != nil {
		b.Fatal(err)
	}
	upls := make([][]float64, len(vecs))
	for i, v := range vecs {
		upls[i] = make([]float64, nArms)
		if err := m.Uplift.Predict(v, upls[i]); err != nil {
			b.Fatal(err)
		}
	}
	var dec policy.Decision
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i*7919)
	}
	run("policy", func(i int) {
		k := i % len(vecs)
		req := policy.Request{DecisionID: ids[i%len(ids)], Visitor: f.sessions[k], Session: f.sessions[k],
			Page: "/cart", Features: vecs[k], Propensity: 0.1, Uplift: upls[k], Now: time.UnixMilli(now)}
		if err := pol.Decide(&req, &dec); err != nil {
			b.Fatal(err)
		}
	})
	ivIDs := make([]string, len(site.Interventions))
	for i := range site.Interventions {
		ivIDs[i] = site.Interventions[i].ID
	}
	run("log", func(i int) {
		k := i % len(vecs)
		rec := &store.DecisionRecord{ID: "bench-" + strconv.Itoa(i), Site: site.ID, Session: f.sessions[k], AnonymousID: "a",
			Page: "/cart", TS: now, Group: "treatment", Arm: ivIDs[0], Probability: 0.5, Propensity: 0.1,
			Interventions: ivIDs, Uplift: upls[k], PropensityVersion: 1, UpliftVersion: 2, Fingerprint: sc.Fingerprint,
			Reason: "bench"}
		if err := env.st.LogDecision(ctx, rec); err != nil {
			b.Fatal(err)
		}
	})
}

// processCPU returns the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
