package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/training"
	"github.com/nudgehq/nudge/training/uplift"
)

// decideEnv is a real server with the decide path on the real in-memory store.
type decideEnv struct {
	url    string
	st     *store.Store
	srv    *serve.Server
	site   *config.Site
	schema *features.Schema
}

// newDecideEnv starts the API on 127.0.0.1 with the demo site, its policy replaced by pol.
func newDecideEnv(t testing.TB, pol config.Policy) *decideEnv {
	t.Helper()
	cfg := config.Demo()
	cfg.Sites[0].Policy = pol
	sch, err := schemas(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{InMemory: true, Schema: sch})
	if err != nil {
		t.Fatal(err)
	}
	opts := serve.Options{Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(wire.DefaultLimits())}
	if _, err := withDecide(ctx, &opts, st, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := st.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	sc, _ := sch("demo")
	return &decideEnv{url: "http://" + srv.Addr(), st: st, srv: srv, site: &cfg.Sites[0], schema: sc}
}

// call sends a request with key and returns the status and body.
func (e *decideEnv) call(t testing.TB, method, path, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// decideResp is the body of /v1/decide as a client reads it.
type decideResp struct {
	DecisionID   string `json:"decision_id"`
	Session      string `json:"session"`
	KnownSession bool   `json:"known_session"`
	Intervene    bool   `json:"intervene"`
	Intervention *struct {
		ID   string  `json:"id"`
		Kind string  `json:"kind"`
		Cost float64 `json:"cost"`
	} `json:"intervention"`
	Propensity    *float64           `json:"propensity"`
	Uplift        map[string]float64 `json:"uplift"`
	ExpectedValue map[string]float64 `json:"expected_value"`
	Eligible      []string           `json:"eligible"`
	Group         string             `json:"group"`
	Probability   float64            `json:"probability"`
	ModelVersion  struct {
		Propensity *int `json:"propensity"`
		Uplift     *int `json:"uplift"`
	} `json:"model_version"`
	Reason string `json:"reason"`
}

func (e *decideEnv) decide(t testing.TB, body string) decideResp {
	t.Helper()
	code, b := e.call(t, http.MethodPost, "/v1/decide", e.site.WriteKey, body)
	if code != http.StatusOK {
		t.Fatalf("decide %s: status %d: %s", body, code, b)
	}
	var r decideResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decide: %v: %s", err, b)
	}
	return r
}

// ingest posts a session's events: page views and, when cart, an add_to_cart milestone.
func (e *decideEnv) ingest(t testing.TB, session, anon string, at time.Time, views int, cart bool) {
	t.Helper()
	var evs []string
	for i := range views {
		evs = append(evs, fmt.Sprintf(`{"event_id":"%s-v%d","session_id":%q,"anonymous_id":%q,"type":"page_view","timestamp":%d,"props":{"path":"/p/%d"}}`,
			session, i, session, anon, at.Add(time.Duration(i)*time.Second).UnixMilli(), i))
	}
	if cart {
		evs = append(evs, fmt.Sprintf(`{"event_id":"%s-c","session_id":%q,"anonymous_id":%q,"type":"micro_conversion","name":"add_to_cart","timestamp":%d}`,
			session, session, anon, at.Add(time.Duration(views)*time.Second).UnixMilli()))
	}
	code, b := e.call(t, http.MethodPost, "/v1/events", e.site.WriteKey, "["+strings.Join(evs, ",")+"]")
	if code != http.StatusOK {
		t.Fatalf("ingest: %d %s", code, b)
	}
}

// loggedDecision reads a logged decision through the admin API, waiting for the writer.
func (e *decideEnv) loggedDecision(t testing.TB, id string) serve.DecisionResponse {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b := e.call(t, http.MethodGet, "/v1/decisions/"+id, e.site.AdminKey, "")
		if code == http.StatusOK {
			var d serve.DecisionResponse
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("decision %s: %d %s", id, code, b)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDecideWithoutModel(t *testing.T) {
	e := newDecideEnv(t, config.Policy{HoldoutShare: 0.2, ExplorationShare: 0.5, Seed: 7})
	now := time.Now().Add(-time.Minute)
	e.ingest(t, "s1", "v1", now, 4, true)

	r := e.decide(t, `{"session_id":"s1","page":"/cart"}`)
	if len(r.DecisionID) != 32 || !r.KnownSession || r.Session != "s1" {
		t.Errorf("decision %+v", r)
	}
	if r.Propensity != nil || r.ModelVersion.Propensity != nil || r.ModelVersion.Uplift != nil || len(r.Uplift) != 0 {
		t.Errorf("scores without a model: %+v", r)
	}
	if !strings.Contains(r.Reason, "no promoted model") {
		t.Errorf("reason %q does not say there is no model", r.Reason)
	}
	// Every intervention is eligible for a cart session with 4 views (discount10 needs the
	// cart phase, chat_offer 3 views).
	if strings.Join(r.Eligible, ",") != "discount10,chat_offer,help_tip" {
		t.Errorf("eligible %v", r.Eligible)
	}
	// Without an uplift model only exploration treats.
	if r.Group == "treatment" && r.Intervene {
		t.Errorf("treated greedily without an uplift model: %+v", r)
	}
	d := e.loggedDecision(t, r.DecisionID)
	if d.Probability != r.Probability || d.Group != r.Group || d.Session != "s1" || d.AnonymousID != "v1" ||
		d.Page != "/cart" || d.Fingerprint != e.schema.Fingerprint || d.Exposed {
		t.Errorf("logged %+v, answered %+v", d, r)
	}

	t.Run("unknown session decides on an empty state", func(t *testing.T) {
		r := e.decide(t, `{"session_id":"never-seen","anonymous_id":"v9"}`)
		if r.KnownSession || r.Session != "never-seen" || r.DecisionID == "" {
			t.Errorf("%+v", r)
		}
		// An empty session is in no phase and has no views: only help_tip is eligible.
		if strings.Join(r.Eligible, ",") != "help_tip" {
			t.Errorf("eligible %v", r.Eligible)
		}
		if d := e.loggedDecision(t, r.DecisionID); d.AnonymousID != "v9" {
			t.Errorf("logged anonymous id %q", d.AnonymousID)
		}
	})
	t.Run("score logs nothing", func(t *testing.T) {
		code, b := e.call(t, http.MethodPost, "/v1/score", e.site.WriteKey, `{"session_id":"s1"}`)
		if code != 200 || bytes.Contains(b, []byte("decision_id")) || !bytes.Contains(b, []byte(`"propensity":null`)) {
			t.Errorf("%d %s", code, b)
		}
	})
	t.Run("exposure links its decision", func(t *testing.T) {
		r := e.decide(t, `{"session_id":"s1"}`)
		body := fmt.Sprintf(`[{"event_id":"x1","session_id":"s1","anonymous_id":"v1","type":"exposure","name":"help_tip","timestamp":%d,"props":{"decision_id":%q}}]`,
			time.Now().UnixMilli(), r.DecisionID)
		if code, b := e.call(t, http.MethodPost, "/v1/events", e.site.WriteKey, body); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		if d := e.loggedDecision(t, r.DecisionID); !d.Exposed {
			t.Errorf("decision %s not exposed after its exposure event", r.DecisionID)
		}
	})
	t.Run("bad input and keys", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, key, body string
			status                        int
			code                          string
		}{
			{"malformed json", "POST", "/v1/decide", e.site.WriteKey, `{"session_id":`, 400, "malformed_body"},
			{"not an object", "POST", "/v1/decide", e.site.WriteKey, `[1,2]`, 400, "malformed_body"},
			{"no session", "POST", "/v1/decide", e.site.WriteKey, `{"page":"/"}`, 400, "bad_parameter"},
			{"ts far in the future", "POST", "/v1/decide", e.site.WriteKey,
				fmt.Sprintf(`{"session_id":"s1","ts":%d}`, time.Now().Add(time.Hour).UnixMilli()), 400, "bad_parameter"},
			{"no key", "POST", "/v1/decide", "", `{"session_id":"s1"}`, 401, "unauthorized"},
			{"wrong key", "POST", "/v1/decide", "wk_nope_0123456789abcdef", `{"session_id":"s1"}`, 401, "unauthorized"},
			{"write key on a decision read", "GET", "/v1/decisions/" + r.DecisionID, e.site.WriteKey, "", 403, "forbidden"},
			{"write key on the model API", "GET", "/v1/models", e.site.WriteKey, "", 403, "forbidden"},
			{"write key cannot train", "POST", "/v1/train", e.site.WriteKey, `{}`, 403, "forbidden"},
			{"unknown decision", "GET", "/v1/decisions/nope", e.site.AdminKey, "", 404, "not_found"},
			{"unknown model", "GET", "/v1/models/99", e.site.AdminKey, "", 404, "not_found"},
			{"bad version", "POST", "/v1/models/x/promote", e.site.AdminKey, "", 400, "bad_parameter"},
			{"rollback without history", "POST", "/v1/models/rollback?kind=uplift", e.site.AdminKey, "", 404, "not_found"},
			{"rollback bad kind", "POST", "/v1/models/rollback?kind=x", e.site.AdminKey, "", 400, "bad_parameter"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, b := e.call(t, tc.method, tc.path, tc.key, tc.body)
				var eb serve.ErrorBody
				if err := json.Unmarshal(b, &eb); err != nil || code != tc.status || eb.Error.Code != tc.code {
					t.Errorf("status %d, body %s; want %d %s", code, b, tc.status, tc.code)
				}
			})
		}
		// The admin key may decide too (server-side callers).
		if code, b := e.call(t, "POST", "/v1/decide", e.site.AdminKey, `{"session_id":"s1"}`); code != 200 {
			t.Errorf("admin key: %d %s", code, b)
		}
	})
}

func TestDecideGroupsAndCaps(t *testing.T) {
	t.Run("holdout is sticky per visitor and never treats", func(t *testing.T) {
		const h, x = 0.5, 0.3
		e := newDecideEnv(t, config.Policy{HoldoutShare: h, ExplorationShare: x, Seed: 1})
		held := 0
		for v := range 40 {
			var first string
			for i := range 3 {
				r := e.decide(t, fmt.Sprintf(`{"session_id":"h%d-%d","anonymous_id":"visitor-%d"}`, v, i, v))
				if i == 0 {
					first = r.Group
				} else if (r.Group == "holdout") != (first == "holdout") {
					t.Fatalf("visitor %d: group %s then %s", v, first, r.Group)
				}
				if r.Group != "holdout" {
					continue
				}
				// No uplift model: the greedy arm is none, so P(none) = h + (1-h)((1-x) + x/(|E|+1)).
				want := h + (1-h)*((1-x)+x/float64(len(r.Eligible)+1))
				if r.Intervene || math.Abs(r.Probability-want) > 1e-12 {
					t.Errorf("holdout decision %+v, want probability %v", r, want)
				}
			}
			if first == "holdout" {
				held++
			}
		}
		if held < 8 || held > 32 {
			t.Errorf("%d of 40 visitors in a 50%% holdout", held)
		}
	})
	t.Run("exploration is uniform over eligible arms and none, with caps", func(t *testing.T) {
		const x = 0.99
		e := newDecideEnv(t, config.Policy{ExplorationShare: x, Seed: 3})
		e.ingest(t, "x1", "vx", time.Now().Add(-time.Minute), 4, true)
		shown := map[string]int{}
		for i := range 60 {
			r := e.decide(t, `{"session_id":"x1"}`)
			// Without an uplift model the greedy arm is none.
			want := x / float64(len(r.Eligible)+1)
			if r.Intervention == nil {
				want += 1 - x
			}
			if math.Abs(r.Probability-want) > 1e-12 {
				t.Errorf("decision %d (%s): probability %v with %d eligible, want %v", i, r.Group, r.Probability, len(r.Eligible), want)
			}
			if r.Intervention != nil {
				shown[r.Intervention.ID]++
			}
		}
		// Demo caps per session: discount10 1, chat_offer 1, help_tip 2.
		if shown["discount10"] > 1 || shown["chat_offer"] > 1 || shown["help_tip"] > 2 {
			t.Errorf("caps exceeded: %v", shown)
		}
		if shown["help_tip"] == 0 {
			t.Errorf("60 uniform draws never showed help_tip: %v", shown)
		}
		r := e.decide(t, `{"session_id":"x1"}`)
		for _, id := range r.Eligible {
			if shown[id] >= map[string]int{"discount10": 1, "chat_offer": 1, "help_tip": 2}[id] {
				t.Errorf("%s eligible after reaching its cap (%v)", id, r.Eligible)
			}
		}
	})
}

// trainedModels fits a real logistic propensity model and a real T-learner uplift model on
// synthetic rows of the live schema around the vector of session center, in which help_tip
// raises conversion from 10% to 70% and the other arms change nothing, and registers them
// (propensity first, then uplift).
func trainedModels(t testing.TB, e *decideEnv, center string, l2 float64) (prop, upl int) {
	t.Helper()
	ctx := context.Background()
	base, _, err := e.st.FeatureVector(ctx, "demo", center, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	names := e.schema.Names
	d := len(names)
	arms := []string{"control", "discount10", "chat_offer", "help_tip"}
	ds := &training.Dataset{Names: names, Arms: arms}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 800 {
		for j := 0; j < d; j++ {
			ds.X = append(ds.X, base[j]+0.1*(math.Abs(base[j])+1)*rng.NormFloat64())
		}
		arm := rng.IntN(len(arms))
		p := 0.1
		if arms[arm] == "help_tip" {
			p = 0.7
		}
		y := 0.0
		if rng.Float64() < p {
			y = 1
		}
		ds.T, ds.Y = append(ds.T, arm), append(ds.Y, y)
	}
	pm, err := training.NewLogistic(training.LogisticOptions{L2: l2}).Fit(ctx, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	um, err := uplift.TLearner{Base: training.NewLogistic(training.LogisticOptions{L2: 10})}.Fit(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	var pb, ub bytes.Buffer
	if err := model.Write(&pb, pm); err != nil {
		t.Fatal(err)
	}
	if err := uplift.Write(&ub, um, uplift.DefaultCodec); err != nil {
		t.Fatal(err)
	}
	pr := &store.ModelRecord{Site: "demo", Kind: "propensity", Learner: "logistic", Fingerprint: e.schema.Fingerprint,
		Features: names, Rows: ds.N(), Metrics: map[string]float64{"auc": 0.5}, Artifact: pb.Bytes()}
	ur := &store.ModelRecord{Site: "demo", Kind: "uplift", Learner: "t-learner/logistic", Fingerprint: e.schema.Fingerprint,
		Features: names, Arms: arms, Rows: ds.N(), Artifact: ub.Bytes()}
	for _, r := range []*store.ModelRecord{pr, ur} {
		if err := e.st.PutModel(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return pr.Version, ur.Version
}

func (e *decideEnv) promote(t testing.TB, version int) serve.PromoteResponse {
	t.Helper()
	code, b := e.call(t, http.MethodPost, fmt.Sprintf("/v1/models/%d/promote", version), e.site.AdminKey, "")
	if code != http.StatusOK {
		t.Fatalf("promote v%d: %d %s", version, code, b)
	}
	var r serve.PromoteResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecideWithPromotedModels(t *testing.T) {
	e := newDecideEnv(t, config.Policy{Seed: 5, Threshold: 5}) // greedy: no holdout, no exploration
	ctx := context.Background()
	e.ingest(t, "m1", "vm", time.Now().Add(-time.Minute), 4, true)
	prop, upl := trainedModels(t, e, "m1", 1)

	if r := e.promote(t, prop); r.Live.Propensity != prop || r.Live.Uplift != 0 || !r.Model.Promoted {
		t.Errorf("promote propensity: %+v", r)
	}
	if r := e.promote(t, upl); r.Live.Uplift != upl || r.Model.Kind != "uplift" {
		t.Errorf("promote uplift: %+v", r)
	}

	// help_tip's uplift (~0.6 x 60 - 0.1) is the only expected value above the threshold: shown twice
	// (its per-session cap), then nothing.
	for i, want := range []string{"help_tip", "help_tip", ""} {
		r := e.decide(t, `{"session_id":"m1"}`)
		if r.Propensity == nil || *r.Propensity <= 0 || *r.Propensity >= 1 {
			t.Fatalf("propensity %v", r.Propensity)
		}
		if *r.ModelVersion.Propensity != prop || *r.ModelVersion.Uplift != upl || len(r.Uplift) != 3 {
			t.Errorf("versions/uplift %+v", r)
		}
		got := ""
		if r.Intervention != nil {
			got = r.Intervention.ID
		}
		if got != want || r.Group != "treatment" || r.Probability != 1 {
			t.Errorf("decision %d: %q group %s p %v (%s), want %q", i, got, r.Group, r.Probability, r.Reason, want)
		}
		if want != "" && (r.Uplift["help_tip"] < 0.3 || r.ExpectedValue["help_tip"] < 10 || !strings.Contains(r.Reason, "help_tip")) {
			t.Errorf("scores %+v", r)
		}
		d := e.loggedDecision(t, r.DecisionID)
		if d.Intervention != want || d.PropensityVersion != prop || d.UpliftVersion != upl || d.Probability != 1 ||
			d.Uplift["help_tip"] != r.Uplift["help_tip"] || d.Propensity != *r.Propensity {
			t.Errorf("logged %+v", d)
		}
	}
	// The decision log read by training sees them in time order.
	n := 0
	if err := e.st.Decisions(ctx, "demo", 0, 0, func(r *store.DecisionRecord) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("%d decisions logged (%v)", n, err)
	}

	t.Run("models API", func(t *testing.T) {
		code, b := e.call(t, "GET", "/v1/models", e.site.AdminKey, "")
		var ms serve.ModelsResponse
		if err := json.Unmarshal(b, &ms); code != 200 || err != nil || len(ms.Models) != 2 ||
			ms.Promoted["propensity"] != prop || ms.Promoted["uplift"] != upl || ms.Live.Uplift != upl {
			t.Errorf("%d %s", code, b)
		}
		code, b = e.call(t, "GET", fmt.Sprintf("/v1/models/compare?versions=%d,%d", prop, upl), e.site.AdminKey, "")
		if code != 200 || !bytes.Contains(b, []byte(`"auc":{"1":0.5}`)) {
			t.Errorf("compare: %d %s", code, b)
		}
		// export, then import as a new version
		code, exp := e.call(t, "GET", fmt.Sprintf("/v1/models/%d/export", prop), e.site.AdminKey, "")
		if code != 200 {
			t.Fatalf("export: %d %s", code, exp)
		}
		code, b = e.call(t, "POST", "/v1/models/import", e.site.AdminKey, string(exp))
		var imp serve.ModelInfo
		if err := json.Unmarshal(b, &imp); code != 201 || err != nil || imp.Version != 3 || imp.Kind != "propensity" {
			t.Fatalf("import: %d %s", code, b)
		}
		code, b = e.call(t, "POST", "/v1/models/import", e.site.AdminKey, `{"nope":1}`)
		if code != 400 {
			t.Errorf("bad import: %d %s", code, b)
		}
	})
	t.Run("schema mismatch is a 409 and changes nothing", func(t *testing.T) {
		rec := &store.ModelRecord{Site: "demo", Kind: "propensity", Learner: "logistic", Fingerprint: "other",
			Features: e.schema.Names}
		rec.Artifact = mustModel(t, e).Artifact
		if err := e.st.PutModel(ctx, rec); err != nil {
			t.Fatal(err)
		}
		code, b := e.call(t, "POST", fmt.Sprintf("/v1/models/%d/promote", rec.Version), e.site.AdminKey, "")
		if code != 409 || !bytes.Contains(b, []byte(`"conflict"`)) {
			t.Errorf("%d %s", code, b)
		}
		if r := e.decide(t, `{"session_id":"m1"}`); *r.ModelVersion.Propensity != prop {
			t.Errorf("live propensity %d after a refused promotion", *r.ModelVersion.Propensity)
		}
	})
}

func mustModel(t testing.TB, e *decideEnv) *store.ModelRecord {
	t.Helper()
	rec, err := e.st.Model(context.Background(), "demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestPromotionSwapUnderLoad promotes and rolls back while decide requests run: none fails,
// and once a promotion has answered every later decision uses the new version.
func TestPromotionSwapUnderLoad(t *testing.T) {
	e := newDecideEnv(t, config.Policy{HoldoutShare: 0.1, ExplorationShare: 0.1, Seed: 9})
	e.ingest(t, "w1", "vw", time.Now().Add(-time.Minute), 4, true)
	prop, upl := trainedModels(t, e, "w1", 1)
	prop2, _ := trainedModels(t, e, "w1", 50) // a second propensity model (v3), differently regularised
	e.promote(t, prop)
	e.promote(t, upl)

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		failures atomic.Int64
		total    atomic.Int64
		// epoch is odd while a swap is in flight; current is the live version when it is even.
		epoch   atomic.Int64
		current atomic.Int64
		stale   atomic.Int64
	)
	current.Store(int64(prop))
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				e1, want := epoch.Load(), current.Load()
				code, b := e.call(t, "POST", "/v1/decide", e.site.WriteKey, fmt.Sprintf(`{"session_id":"w%d-%d"}`, w, i))
				total.Add(1)
				if code != 200 {
					failures.Add(1)
					t.Errorf("status %d: %s", code, b)
					continue
				}
				var r decideResp
				if err := json.Unmarshal(b, &r); err != nil || r.ModelVersion.Propensity == nil {
					failures.Add(1)
					continue
				}
				if e1%2 == 0 && epoch.Load() == e1 && int64(*r.ModelVersion.Propensity) != want {
					stale.Add(1)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	for range 3 {
		epoch.Add(1)
		e.promote(t, prop2)
		current.Store(int64(prop2))
		epoch.Add(1)
		time.Sleep(30 * time.Millisecond)
		epoch.Add(1)
		code, b := e.call(t, "POST", "/v1/models/rollback?kind=propensity", e.site.AdminKey, "")
		if code != 200 || !bytes.Contains(b, []byte(fmt.Sprintf(`"live":{"propensity":%d`, prop))) ||
			!bytes.Contains(b, []byte(fmt.Sprintf(`"previous":%d`, prop2))) {
			t.Errorf("rollback: %d %s", code, b)
		}
		current.Store(int64(prop))
		epoch.Add(1)
		time.Sleep(30 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 || stale.Load() != 0 || total.Load() < 20 {
		t.Errorf("%d requests, %d failed, %d served a version older than the last answered promotion",
			total.Load(), failures.Load(), stale.Load())
	}
	t.Logf("%d decide requests during 6 swaps", total.Load())
}
