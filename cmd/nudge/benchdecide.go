package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

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

func buildDecideFixture(ctx context.Context, dir string, visitors int, say func(format string, args ...any)) (*decideFixture, error) {
	if say == nil {
		say = func(string, ...any) {}
	}
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
	sm, err := sim.New(sim.Config{Seed: 11, Visitors: visitors, Days: 21,
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
		if iv := res.Intervention(); iv != nil && slices.Contains(req.Eligible, iv.ID) {
			d.Intervention = iv.ID
		}
		return d, nil
	})
	say("simulating %d visitors over 21 days (events via store.Append, decisions via the decide path)", visitors)
	out, err := sm.Run(ctx, sink, decider)
	if err != nil {
		return nil, err
	}
	say("%d sessions, %d events, %d decisions; training gbdt propensity and t-learner uplift models", out.Sessions, out.Events, len(out.Decisions))
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

// benchDecideOptions configure `nudge bench decide`.
type benchDecideOptions struct {
	visitors    int
	concurrency int
	duration    time.Duration
	addr        string
	hold        bool
	dir         string
}

func newBenchDecideCmd(a *app) *cobra.Command {
	var o benchDecideOptions
	cmd := &cobra.Command{
		Use:   "decide",
		Short: "Decisions per second and latency of POST /v1/decide over HTTP on loopback",
		Long: `Build an on-disk store in a temporary directory with simulated traffic (--visitors of the
demo shop over 21 days) and a GBDT propensity and T-learner uplift model trained and promoted
by the pipeline, start the real server on --addr (loopback), then send POST /v1/decide for
random known sessions from --concurrency keep-alive clients for --duration and print the
decisions per second and the latency percentiles. Every decision is real: features read
from Badger, both models scored, the policy applied, the decision logged.

--hold keeps serving afterwards (until Ctrl-C) and writes a wrk script, to compare with
another service under the same load generator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchDecide(cmd.Context(), a.stdout, o)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.visitors, "visitors", 2500, "simulated visitors (about 1.8 sessions each)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "client goroutines")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "load duration (at most 2m)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "loopback address to serve on")
	fs.BoolVar(&o.hold, "hold", false, "keep serving after the run (for wrk) until Ctrl-C")
	fs.StringVar(&o.dir, "dir", "", "parent of the temporary data directory")
	return cmd
}

func benchDecide(ctx context.Context, w io.Writer, o benchDecideOptions) error {
	if o.duration > 2*time.Minute || o.duration <= 0 || o.concurrency <= 0 || o.visitors <= 0 {
		return &exitError{2, errors.New("bench decide: need 0 < --duration <= 2m, --concurrency > 0, --visitors > 0")}
	}
	if host, _, _ := strings.Cut(o.addr, ":"); host != "127.0.0.1" && host != "localhost" && host != "[::1]" {
		return &exitError{2, fmt.Errorf("bench decide: --addr %q: loopback only", o.addr)}
	}
	dir, err := os.MkdirTemp(o.dir, "nudge-bench-decide-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "[%5.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	f, err := buildDecideFixture(ctx, dir, o.visitors, say)
	if err != nil {
		return err
	}
	defer f.env.close()
	if err := f.env.srv.Open(o.addr); err != nil {
		return err
	}
	defer f.env.srv.Close(context.WithoutCancel(ctx))
	url := "http://" + f.env.srv.Addr() + "/v1/decide"
	key := f.cfg.Sites[0].WriteKey
	say("serving %s; %d known sessions; models propensity v%d, uplift v%d", url, len(f.sessions), f.versions[0], f.versions[1])

	bodies := make([][]byte, len(f.sessions))
	for i, s := range f.sessions {
		bodies[i] = fmt.Appendf(nil, `{"session_id":%q,"page":"/cart"}`, s)
	}
	lat, errs, elapsed := decideLoad(ctx, url, key, bodies, o.concurrency, o.duration)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Fprintf(w, "decide over HTTP: %d decisions in %.1fs from %d clients: %.0f decisions/s, %d errors\n",
		len(lat), elapsed.Seconds(), o.concurrency, float64(len(lat))/elapsed.Seconds(), errs)
	fmt.Fprintf(w, "  latency p50 %v  p90 %v  p99 %v  max %v\n", pct(0.5), pct(0.9), pct(0.99), pct(1))
	if !o.hold {
		return nil
	}
	script := dir + "/decide.lua"
	var lua strings.Builder
	fmt.Fprintf(&lua, "-- wrk script: POST /v1/decide for random known sessions of the bench store\nmath.randomseed(7)\nwrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer %s\"\nlocal ids = {", key)
	for i, s := range f.sessions {
		if i > 0 {
			lua.WriteByte(',')
		}
		fmt.Fprintf(&lua, "%q", s)
	}
	lua.WriteString("}\nrequest = function()\n  return wrk.format(nil, nil, nil, '{\"session_id\":\"' .. ids[math.random(#ids)] .. '\"}')\nend\n")
	if err := os.WriteFile(script, []byte(lua.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "holding; try: wrk -t2 -c64 -d20s -s %s %s\nCtrl-C to stop.\n", script, url)
	<-ctx.Done()
	return nil
}

// decideLoad sends bodies (at random) to url from c clients for d and returns each
// successful request's latency, the number of failures and the elapsed time.
func decideLoad(ctx context.Context, url, key string, bodies [][]byte, c int, d time.Duration) ([]time.Duration, int, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	start := time.Now()
	for g := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var mine []time.Duration
			bad := 0
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[rng.IntN(len(bodies))]))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						bad++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat, errs = append(lat, mine...), errs+bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, errs, time.Since(start)
}
