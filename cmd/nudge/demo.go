package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
)

// demoFlags are the flags of `nudge demo`.
type demoFlags struct {
	addr, data       string
	visitors, days   int
	seed             uint64
	exitAfterSetup   bool
	learner, upliftL string
	exploration      float64
	holdout          float64
	logLevel         string
}

func newDemoCmd(a *app) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Simulate a shop, train and promote models, then serve the API and the dashboard on localhost",
		Long: `Run the whole product on the demo shop in one command.

On an embedded store (a temporary directory, removed at exit, or --data DIR, kept), nudge
starts its real HTTP server on --addr, then simulates --days of traffic of --visitors visitors
of the demo shop (data/sim: segments of persuadable, sure-thing, lost-cause and
do-not-disturb visitors with known true uplift). Every simulated event goes through the real
ingest endpoint (POST /v1/events) and every decision through the real decide endpoint
(POST /v1/decide) — during this phase the site's policy mostly explores (--exploration,
--holdout), so the traffic is a randomised policy whose assignment probabilities are logged.
Then it trains a propensity and an uplift model on the logged data (point in time), promotes
both (swapped live, no restart), restores the configured policy and keeps serving until
Ctrl-C, printing what to open: the dashboard (/dashboard/, log in with the demo site's admin
key), the API and curl examples with a real session id.

--exit-after-setup runs everything, prints a summary with the models' metrics, and shuts
down cleanly (tests, CI).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), a, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&f.data, "data", "", "data directory (default: a temporary directory removed at exit)")
	fs.IntVar(&f.visitors, "visitors", 1500, "simulated visitors")
	fs.IntVar(&f.days, "days", 21, "simulated days (ending now)")
	fs.Uint64Var(&f.seed, "seed", 1, "simulation and policy seed")
	fs.BoolVar(&f.exitAfterSetup, "exit-after-setup", false, "stop after training and promotion, printing a summary")
	fs.StringVar(&f.learner, "learner", "auto", "propensity learner: logistic, gbdt or auto")
	fs.StringVar(&f.upliftL, "uplift-learner", "x", "uplift learner: t, x, to or auto")
	fs.Float64Var(&f.exploration, "exploration", 0.85, "exploration share while simulating")
	fs.Float64Var(&f.holdout, "holdout", 0.1, "holdout share while simulating")
	fs.StringVar(&f.logLevel, "log-level", "warn", "server log level: debug, info, warn or error")
	return cmd
}

// demoSummary is what a demo run did (printed, and returned for tests).
type demoSummary struct {
	Addr                 string
	Sessions, Events     int
	Decisions, Logged    int
	Mismatched           int // server chose an intervention the simulator did not consider eligible
	Propensity, Uplift   *serve.ModelInfo
	LiveProp, LiveUplift int
	SessionID            string
	Setup                time.Duration
	// The live policy on fresh simulated traffic: its true incremental value (conversion value
	// minus cost) and the oracle's at the same number of treated sessions.
	EvalSessions, EvalTreated      int
	EvalValue, OracleValue, Random float64
}

func runDemo(ctx context.Context, a *app, f demoFlags) (err error) {
	if f.visitors <= 0 || f.days <= 0 {
		return &exitError{2, errors.New("--visitors and --days must be positive")}
	}
	_, err = runDemoSetup(ctx, a.stdout, f)
	return err
}

// runDemoSetup runs the demo and returns its summary; it blocks until ctx ends unless
// f.exitAfterSetup.
func runDemoSetup(ctx context.Context, out io.Writer, f demoFlags) (sum *demoSummary, err error) {
	start := time.Now()
	log, err := newLogger(os.Stderr, f.logLevel, "text")
	if err != nil {
		return nil, &exitError{2, err}
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	dir := f.data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nudge-demo-*"); err != nil {
			return nil, fmt.Errorf("demo: temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("demo: data directory: %w", err)
	}
	cfg := config.Demo()
	site := &cfg.Sites[0]
	configured := site.Policy
	configured.Seed = f.seed

	st, err := openStore(ctx, cfg, storeOptions{dir: dir}, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := st.Close(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	opts := serve.Options{Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(wire.DefaultLimits()), Logger: log,
		Reporter: reportAdapter{st, cfg}}
	reg, err := withDecide(ctx, &opts, st, cfg, log)
	if err != nil {
		return nil, err
	}
	srv, err := serve.New(opts)
	if err != nil {
		return nil, err
	}
	if err := srv.Open(f.addr); err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := srv.Close(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	base := "http://" + srv.Addr()
	say("nudge demo: store %s, API %s", dir, base)

	// Phase 1: simulate through the real endpoints with a mostly exploring policy.
	explore := configured
	explore.ExplorationShare, explore.HoldoutShare = f.exploration, f.holdout
	if err := opts.Live.SetPolicy(site.ID, explore); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	simStart := now.Add(-time.Duration(f.days) * 24 * time.Hour).Truncate(24 * time.Hour)
	sm, err := sim.New(sim.Config{Seed: f.seed, Visitors: f.visitors, Days: f.days, Start: simStart, Site: site.ID})
	if err != nil {
		return nil, &exitError{2, err}
	}
	say("simulating %d visitors over %d days (%s to %s) through POST /v1/events and POST /v1/decide (exploration %.2f, holdout %.2f)",
		f.visitors, f.days, simStart.Format("2006-01-02"), now.Format("2006-01-02"), f.exploration, f.holdout)
	cl := &demoClient{base: base, site: site, http: &http.Client{Timeout: 30 * time.Second}}
	lastDay := -1
	cl.onDecide = func(ts int64) {
		if day := int(time.UnixMilli(ts).Sub(simStart).Hours() / 24); day >= lastDay+max(1, f.days/7) || day < lastDay {
			lastDay = day
			say("  day %2d/%d: %d events, %d decisions", day+1, f.days, cl.events.Load(), cl.decisions.Load())
		}
	}
	res, err := sm.Run(ctx, cl.sink, cl)
	if err != nil {
		return nil, fmt.Errorf("demo: simulate: %w", err)
	}
	say("simulated %d sessions, %d events, %d decisions (%d shown an intervention)",
		res.Sessions, res.Events, len(res.Decisions), countTreated(res.Decisions))
	if n := cl.mismatched.Load(); n > 0 {
		say("  %d decisions named an intervention the simulator did not consider eligible: shown nothing", n)
	}
	logged, err := waitDecisions(ctx, st, site.ID, len(res.Decisions))
	if err != nil {
		return nil, err
	}

	// Phase 2: train, promote (live swap), restore the configured policy.
	say("training propensity (%s) and uplift (%s) models on the logged events and decisions...", f.learner, f.upliftL)
	lastStage := ""
	reg.progress = func(stage string, done, total int) {
		if stage != lastStage {
			lastStage = stage
			say("  %s", stage)
		}
	}
	tr, err := srv.Train(ctx, site.ID, serve.TrainRequest{
		Learner: f.learner, UpliftLearner: f.upliftL, Seed: f.seed, Promote: true, Note: "nudge demo",
	})
	if err != nil {
		return nil, fmt.Errorf("demo: train: %w", err)
	}
	reg.progress = nil
	// The share budget is spent first come, first served: the threshold the uplift model
	// suggests from its holdout (training/pipeline budgetThreshold) keeps it for the sessions
	// with the best predicted value.
	if tr.Uplift != nil && tr.Uplift.Metrics["policy_threshold"] > configured.Threshold {
		configured.Threshold = tr.Uplift.Metrics["policy_threshold"]
	}
	if err := opts.Live.SetPolicy(site.ID, configured); err != nil {
		return nil, err
	}
	sum = &demoSummary{
		Addr: srv.Addr(), Sessions: res.Sessions, Events: res.Events, Decisions: len(res.Decisions),
		Logged: logged, Mismatched: int(cl.mismatched.Load()), Propensity: tr.Propensity, Uplift: tr.Uplift,
		Setup: time.Since(start),
	}
	sum.LiveProp, sum.LiveUplift = opts.Live.Versions(site.ID)
	if len(res.Decisions) > 0 {
		sum.SessionID = res.Decisions[len(res.Decisions)-1].SessionID
	}
	say("promoted and live: propensity v%d, uplift v%d; policy restored (holdout %.2f, exploration %.2f, budget %.0f%% of sessions, threshold %.2f from the uplift holdout)",
		sum.LiveProp, sum.LiveUplift, configured.HoldoutShare, configured.ExplorationShare, 100*configured.Budget.MaxShare, configured.Threshold)
	if err := demoEvaluate(ctx, say, cl, f, site.ID, now, sum); err != nil {
		return nil, err
	}
	sum.Setup = time.Since(start)
	demoPrintModel(out, "propensity", tr.Propensity, []string{"auc", "pr_auc", "log_loss", "brier"})
	demoPrintModel(out, "uplift", tr.Uplift, []string{"ope_logging", "ope_snips", "ope_diff_snips", "ope_diff_snips_lo", "ope_diff_snips_hi"})
	if tr.Uplift != nil {
		fmt.Fprintln(out, "             (ope_*: off-policy value per decision, in conversion value, of the model's greedy policy vs the logging policy on the holdout)")
	}
	say("decision log: %d decisions of the exploration phase (and %d of the evaluation) with their assignment probabilities", logged, sum.EvalSessions)
	say("setup done in %.1fs", sum.Setup.Seconds())
	demoPrintOpen(out, base, site, sum.SessionID)
	if f.exitAfterSetup {
		return sum, nil
	}
	fmt.Fprintln(out, "\nServing until Ctrl-C.")
	<-ctx.Done()
	fmt.Fprintln(out, "shutting down...")
	return sum, nil
}

// demoEvaluate sends a few more days of fresh simulated traffic (another seed) through the
// decide endpoint with the promoted models and the configured policy, and compares the true
// value of what it showed with the oracle that knows every session's true uplift (same number
// of treated sessions) and with a uniformly random policy.
func demoEvaluate(ctx context.Context, say func(string, ...any), cl *demoClient, f demoFlags, site string, now time.Time, sum *demoSummary) error {
	days := max(2, f.days/7)
	sm, err := sim.New(sim.Config{Seed: f.seed + 1000, Visitors: max(100, f.visitors/4), Days: days,
		Start: now.Add(-time.Duration(days) * 24 * time.Hour).Truncate(24 * time.Hour), Site: site})
	if err != nil {
		return err
	}
	say("evaluating the live policy on %d days of fresh traffic (%d visitors) through the same endpoints...", days, sm.Config().Visitors)
	cl.onDecide = nil
	res, err := sm.Run(ctx, cl.sink, cl)
	if err != nil {
		return fmt.Errorf("demo: evaluate: %w", err)
	}
	arms := make([]int, len(res.Decisions))
	treated := 0
	for i, d := range res.Decisions {
		arms[i] = d.Arm
		if d.Arm > 0 {
			treated++
		}
	}
	learned, err := sim.PolicyValue(res.Truth, arms)
	if err != nil {
		return err
	}
	oracle, err := sim.PolicyValue(res.Truth, sim.OracleArms(res.Truth, treated))
	if err != nil {
		return err
	}
	random := 0.0
	for i := range res.Truth {
		t := &res.Truth[i]
		g, n := 0.0, 1
		for k, ok := range t.Eligible {
			if ok {
				g += t.Gain(k + 1)
				n++
			}
		}
		random += g / float64(n)
	}
	sum.EvalSessions, sum.EvalTreated = len(res.Decisions), treated
	sum.EvalValue, sum.OracleValue, sum.Random = learned, oracle, random
	pct := 0.0
	if oracle > 0 {
		pct = 100 * learned / oracle
	}
	say("  live policy: %d of %d sessions treated, true incremental value %.0f = %.0f%% of the oracle's %.0f at the same budget (uniformly random policy: %.0f)",
		treated, len(res.Decisions), learned, pct, oracle, random)
	return nil
}

func countTreated(ds []sim.DecisionRecord) int {
	n := 0
	for i := range ds {
		if ds[i].Intervention != "" {
			n++
		}
	}
	return n
}

// waitDecisions waits (bounded) until the decision log holds want decisions: LogDecision
// returns before the writer has written them.
func waitDecisions(ctx context.Context, st *store.Store, site string, want int) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		if err := st.Decisions(ctx, site, 0, 0, func(*store.DecisionRecord) error { n++; return nil }); err != nil {
			return 0, err
		}
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func demoPrintModel(w io.Writer, kind string, m *serve.ModelInfo, keys []string) {
	if m == nil {
		fmt.Fprintf(w, "  %-10s none (too few logged decisions)\n", kind)
		return
	}
	if keys == nil {
		for k := range m.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	var parts []string
	for _, k := range keys {
		if v, ok := m.Metrics[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	fmt.Fprintf(w, "  %-10s v%d %s, %d rows: %s\n", kind, m.Version, m.Learner, m.Rows, strings.Join(parts, " "))
}

func demoPrintOpen(w io.Writer, base string, site *config.Site, session string) {
	if session == "" {
		session = "my-session"
	}
	fmt.Fprintf(w, `
Dashboard:      %[1]s/dashboard/   (log in with the admin key below)
API:            %[1]s   (site %[2]q)
Write key:      %[3]s   (browser-safe: ingest, decide)
Admin key:      %[4]s   (secret: dashboard, reports, models, stats, training)

Decide for a live session:
  curl -s -X POST %[1]s/v1/decide -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"session_id": %[5]q, "page": "/cart"}'
Models and promotion history:
  curl -s %[1]s/v1/models -H 'Authorization: Bearer %[4]s'
Site stats:
  curl -s %[1]s/v1/stats -H 'Authorization: Bearer %[4]s'
The report (JSON; or one section as CSV with format=csv&section=funnel):
  curl -s '%[1]s/v1/report?range=28d' -H 'Authorization: Bearer %[4]s'
`, base, site.ID, site.WriteKey, site.AdminKey, session)
}

// demoClient sends the simulator's traffic to the real endpoints: events to POST /v1/events,
// decisions to POST /v1/decide.
type demoClient struct {
	base       string
	site       *config.Site
	http       *http.Client
	onDecide   func(ts int64)
	events     atomic.Int64
	decisions  atomic.Int64
	mismatched atomic.Int64
}

// wireEvent is an event in the wire format of POST /v1/events.
type wireEvent struct {
	EventID     string            `json:"event_id"`
	SessionID   string            `json:"session_id"`
	AnonymousID string            `json:"anonymous_id"`
	UserID      string            `json:"user_id,omitempty"`
	Type        string            `json:"type"`
	Timestamp   int64             `json:"timestamp"`
	Name        string            `json:"name,omitempty"`
	Value       float64           `json:"value,omitempty"`
	Props       map[string]string `json:"props,omitempty"`
	Consent     bool              `json:"consent"`
}

func (c *demoClient) post(ctx context.Context, path, key string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// sink posts a batch of simulated events (at most 500, the ingest limit, per request).
func (c *demoClient) sink(ctx context.Context, evs []features.Event) error {
	for len(evs) > 0 {
		n := min(len(evs), wire.DefaultLimits().MaxEvents)
		batch := make([]wireEvent, n)
		for i := range batch {
			ev := &evs[i]
			batch[i] = wireEvent{
				EventID: ev.EventID, SessionID: ev.SessionID, AnonymousID: ev.AnonymousID, UserID: ev.UserID,
				Type: ev.Type.String(), Timestamp: ev.TS, Name: ev.Name, Value: ev.Value, Props: ev.Props,
				Consent: ev.Consent,
			}
		}
		body, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		var r serve.IngestResponse
		if err := c.post(ctx, "/v1/events", c.site.WriteKey, body, &r); err != nil {
			return err
		}
		if len(r.Rejected) > 0 {
			return fmt.Errorf("demo: ingest rejected %d events, e.g. %+v", len(r.Rejected), r.Rejected[0])
		}
		c.events.Add(int64(n))
		evs = evs[n:]
	}
	return nil
}

// Decide implements sim.Decider with POST /v1/decide at the simulated time.
func (c *demoClient) Decide(ctx context.Context, req sim.DecisionRequest) (sim.Decision, error) {
	body, err := json.Marshal(serve.DecideRequest{SessionID: req.SessionID, AnonymousID: req.AnonymousID, TS: req.TS})
	if err != nil {
		return sim.Decision{}, err
	}
	var r struct {
		DecisionID   string `json:"decision_id"`
		Intervention *struct {
			ID string `json:"id"`
		} `json:"intervention"`
		Probability float64 `json:"probability"`
	}
	if err := c.post(ctx, "/v1/decide", c.site.WriteKey, body, &r); err != nil {
		return sim.Decision{}, err
	}
	c.decisions.Add(1)
	if c.onDecide != nil {
		c.onDecide(req.TS)
	}
	d := sim.Decision{DecisionID: r.DecisionID, Probability: r.Probability}
	if r.Intervention != nil {
		if slices.Contains(req.Eligible, r.Intervention.ID) {
			d.Intervention = r.Intervention.ID
		} else {
			c.mismatched.Add(1)
		}
	}
	return d, nil
}

var _ sim.Decider = (*demoClient)(nil)
