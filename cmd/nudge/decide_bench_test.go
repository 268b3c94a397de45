package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/serve"
)

// decideFixture is an on-disk store filled by the simulator (events through store.Append,
// decisions through the in-process decide path with an exploring policy), with a propensity
// model and a 3-intervention uplift model trained by the pipeline and promoted: what
// `nudge demo` builds, without HTTP.
type decideFixture struct {
	dir      string
	cfg      *config.Config
	env      *decideEnvDisk // the store that built it, still open: its caches hold every session
	sessions []string
	versions [2]int
	logistic model.Binary // a logistic propensity model trained on the same data (not promoted)
}

func buildDecideFixture(dir string) (*decideFixture, error) {
	ctx := context.Background()
	cfg := config.Demo()
	site := &cfg.Sites[0]
	env, err := openDecideEnv(ctx, cfg, dir, 0)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			env.close()
		}
	}()
	pol := site.Policy
	pol.ExplorationShare, pol.HoldoutShare = 0.85, 0.1
	if err := env.live.SetPolicy(site.ID, pol); err != nil {
		return nil, err
	}
	sm, err := sim.New(sim.Config{Seed: 11, Visitors: 2500, Days: 21,
		Start: time.Now().UTC().Add(-22 * 24 * time.Hour).Truncate(24 * time.Hour), Site: site.ID})
	if err != nil {
		return nil, err
	}
	sink := func(ctx context.Context, evs []features.Event) error {
		_, err := env.st.Append(ctx, site.ID, append([]features.Event(nil), evs...))
		return err
	}
	var res serve.DecideResult
	decider := sim.DeciderFunc(func(ctx context.Context, req sim.DecisionRequest) (sim.Decision, error) {
		if err := env.srv.Decide(ctx, site.ID, &serve.DecideRequest{SessionID: req.SessionID, TS: req.TS}, &res); err != nil {
			return sim.Decision{}, err
		}
		d := sim.Decision{DecisionID: res.DecisionID, Probability: res.Probability}
		if iv := res.Intervention(); iv != nil && contains(req.Eligible, iv.ID) {
			d.Intervention = iv.ID
		}
		return d, nil
	})
	out, err := sm.Run(ctx, sink, decider)
	if err != nil {
		return nil, err
	}
	if _, err := waitDecisions(ctx, env.st, site.ID, len(out.Decisions)); err != nil {
		return nil, err
	}
	tr, err := env.srv.Train(ctx, site.ID, serve.TrainRequest{Learner: "gbdt", UpliftLearner: "t", Seed: 1, Promote: true})
	if err != nil {
		return nil, err
	}
	if tr.Uplift == nil {
		return nil, errors.New("no uplift model trained")
	}
	lt, err := env.srv.Train(ctx, site.ID, serve.TrainRequest{Learner: "logistic", NoUplift: true, Seed: 1})
	if err != nil {
		return nil, err
	}
	rec, err := env.st.Model(ctx, site.ID, lt.Propensity.Version)
	if err != nil {
		return nil, err
	}
	lm, err := model.Read(bytes.NewReader(rec.Artifact))
	if err != nil {
		return nil, err
	}
	if err := env.live.SetPolicy(site.ID, site.Policy); err != nil {
		return nil, err
	}
	ok = true
	f := &decideFixture{dir: dir, cfg: cfg, env: env, versions: [2]int{tr.Propensity.Version, tr.Uplift.Version}, logistic: lm}
	for _, d := range out.Decisions {
		f.sessions = append(f.sessions, d.SessionID)
	}
	return f, nil
}

// decideEnvDisk is the server's decide path on an on-disk store, without listening.
type decideEnvDisk struct {
	st   *store.Store
	srv  *serve.Server
	live *serve.Live
}

func openDecideEnv(ctx context.Context, cfg *config.Config, dir string, sessionCache int) (*decideEnvDisk, error) {
	sch, err := schemas(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Options{Dir: dir, Schema: sch, SessionCache: sessionCache})
	if err != nil {
		return nil, err
	}
	opts := serve.Options{Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(wire.DefaultLimits())}
	if _, err := withDecide(ctx, &opts, st, cfg, slog.New(slog.DiscardHandler)); err != nil {
		st.Close(ctx)
		return nil, err
	}
	srv, err := serve.New(opts)
	if err != nil {
		st.Close(ctx)
		return nil, err
	}
	return &decideEnvDisk{st: st, srv: srv, live: opts.Live}, nil
}

func (e *decideEnvDisk) close() { _ = e.st.Close(context.Background()) }

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
	f, err := buildDecideFixture(b.TempDir())
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
			b.ReportMetric(float64(treated)/float64(b.N), "treated/op")
		})
	}
	f.env.close()
}
