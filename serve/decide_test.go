package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
)

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "tab\tnl\nnul\x00", "ünïcødé ✓", "bad\xffutf8", "\u2028sep"} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q -> %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("%q -> %s -> %q", s, b, got)
		}
	}
}

func TestAppendDecideJSON(t *testing.T) {
	ivs := []*config.Intervention{{ID: "a", Kind: "k\"", Cost: 1.5}, {ID: "b", Kind: "k2", Cost: 0.1}}
	r := &DecideResult{
		DecisionID: "00ff", Site: "s", Session: "x\ny", Known: true, TS: 42, Intervene: true, Arm: 1,
		Propensity: 0.25, Uplift: []float64{math.NaN(), 1e-7}, EV: []float64{math.Inf(1), 2},
		Eligible: []bool{false, true}, Group: "explore", Probability: 0.5, Reason: "why \"not\"",
		PropensityVersion: 3, interventions: ivs,
	}
	var got struct {
		DecisionID   string             `json:"decision_id"`
		Session      string             `json:"session"`
		Intervention map[string]any     `json:"intervention"`
		Propensity   *float64           `json:"propensity"`
		Uplift       map[string]float64 `json:"uplift"`
		EV           map[string]float64 `json:"expected_value"`
		Eligible     []string           `json:"eligible"`
		Versions     map[string]*int    `json:"model_version"`
		Reason       string             `json:"reason"`
	}
	b := appendDecideJSON(nil, r, true)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.DecisionID != "00ff" || got.Session != "x\ny" || got.Intervention["id"] != "b" || *got.Propensity != 0.25 ||
		len(got.Uplift) != 1 || got.Uplift["b"] != 1e-7 || len(got.EV) != 1 || got.EV["b"] != 2 ||
		strings.Join(got.Eligible, ",") != "b" || *got.Versions["propensity"] != 3 || got.Versions["uplift"] != nil ||
		got.Reason != `why "not"` {
		t.Errorf("%s -> %+v", b, got)
	}
	// score: no decision fields; NaN propensity is null
	r.Propensity = math.NaN()
	b = appendDecideJSON(nil, r, false)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if _, ok := m["decision_id"]; ok || m["propensity"] != nil {
		t.Errorf("score body %s", b)
	}
}

// constModel is a scoring model with fixed outputs, for the holder's checks.
type constModel struct {
	n    int
	arms []string
}

func (m constModel) NumFeatures() int                 { return m.n }
func (m constModel) Score([]float64) (float64, error) { return 0.5, nil }
func (m constModel) Arms() []string                   { return m.arms }
func (m constModel) Predict(_ []float64, out []float64) error {
	for i := range out {
		out[i] = 0.1
	}
	return nil
}

func TestLiveHolder(t *testing.T) {
	cfg := config.Demo()
	l, err := NewLive(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := l.current("demo").schema.Len()
	for _, tc := range []struct {
		name string
		m    Models
		ok   bool
	}{
		{"none", Models{}, true},
		{"both", Models{Propensity: constModel{n: n}, PropensityVersion: 1,
			Uplift: constModel{n: n, arms: []string{"control", "help_tip", "gone"}}, UpliftVersion: 2}, true},
		{"propensity feature count", Models{Propensity: constModel{n: n + 1}}, false},
		{"uplift feature count", Models{Uplift: constModel{n: n - 1, arms: []string{"control", "help_tip"}}}, false},
		{"uplift arms name no intervention", Models{Uplift: constModel{n: n, arms: []string{"control", "x"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := l.current("demo")
			err := l.Set("demo", tc.m)
			if tc.ok != (err == nil) {
				t.Fatalf("Set: %v", err)
			}
			after := l.current("demo")
			if !tc.ok {
				if !errors.Is(err, ErrModelMismatch) || after != before {
					t.Errorf("refused swap changed the bundle or err %v", err)
				}
				return
			}
			if after.policy != before.policy {
				t.Error("a model swap replaced the policy (its caps and budget counters)")
			}
			if p, u := l.Versions("demo"); p != tc.m.PropensityVersion || u != tc.m.UpliftVersion {
				t.Errorf("versions %d %d", p, u)
			}
		})
	}
	// help_tip is the third intervention and arm 1 of the model; the others have no arm.
	if got := l.current("demo").armOut; len(got) != 3 || got[0] != -1 || got[1] != -1 || got[2] != 0 {
		t.Errorf("arm mapping %v", got)
	}
	if err := l.SetPolicy("demo", config.Policy{HoldoutShare: 0.6, ExplorationShare: 0.6}); err == nil {
		t.Error("invalid policy accepted")
	}
	if err := l.Set("nope", Models{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown site: %v", err)
	}
	if _, err := l.Reload(t.Context(), "demo"); err == nil {
		t.Error("reload without a loader")
	}
}

// recordingDecisions is a DecisionStore that knows every session (with a fixed vector) and
// keeps the logged records.
type recordingDecisions struct {
	vec  []float64
	recs []*DecisionRecord
}

func (d *recordingDecisions) LiveSession(_ context.Context, _, id string, _ int64, out []float64) (SessionInfo, *features.Schema, error) {
	copy(out, d.vec)
	return SessionInfo{ID: id + "~1", AnonymousID: "anon-" + id}, nil, nil
}

func (d *recordingDecisions) LogDecision(_ context.Context, rec *DecisionRecord) error {
	d.recs = append(d.recs, rec)
	return nil
}

func (d *recordingDecisions) Decision(context.Context, string, string) (*DecisionRecord, bool, error) {
	return nil, false, ErrNotFound
}

// countingUplift predicts uplift 0.01*k for arm k on its n-th call plus n (so every call
// differs).
type countingUplift struct {
	constModel
	calls *int
}

func (m countingUplift) Predict(_ []float64, out []float64) error {
	*m.calls++
	for i := range out {
		out[i] = float64(*m.calls) + 0.01*float64(i+1)
	}
	return nil
}

// TestDecideLogsOwnedRecords checks what Decide logs, for the demo catalogue (the record's
// uplift in the record's own allocation) and one of 12 interventions (beyond it): every
// field, unique ids, and that a later decision with the same result does not change an
// earlier record (the store encodes records after Decide returns).
func TestDecideLogsOwnedRecords(t *testing.T) {
	for _, extra := range []int{0, 9} {
		t.Run(fmt.Sprintf("%d interventions", 3+extra), func(t *testing.T) {
			cfg := config.Demo()
			site := &cfg.Sites[0]
			for i := range extra {
				iv := site.Interventions[2]
				iv.ID = fmt.Sprintf("tip%d", i)
				site.Interventions = append(site.Interventions, iv)
			}
			live, err := NewLive(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			sc := live.current("demo").schema
			arms := []string{"control"}
			for _, iv := range site.Interventions {
				arms = append(arms, iv.ID)
			}
			calls := 0
			if err := live.Set("demo", Models{Propensity: constModel{n: sc.Len()}, PropensityVersion: 4,
				Uplift: countingUplift{constModel{n: sc.Len(), arms: arms}, &calls}, UpliftVersion: 5}); err != nil {
				t.Fatal(err)
			}
			store := &recordingDecisions{vec: make([]float64, sc.Len())}
			srv, err := New(Options{Config: cfg, Events: struct{ EventStore }{}, Live: live, Decisions: store,
				Decode: func([]byte, time.Time, bool) (Batch, error) { return Batch{}, nil }})
			if err != nil {
				t.Fatal(err)
			}
			var res DecideResult
			for _, s := range []string{"s1", "s2", "s3"} {
				if err := srv.Decide(t.Context(), "demo", &DecideRequest{SessionID: s, Page: "/cart"}, &res); err != nil {
					t.Fatal(err)
				}
			}
			if len(store.recs) != 3 {
				t.Fatalf("%d records logged", len(store.recs))
			}
			ids := map[string]bool{}
			for n, rec := range store.recs {
				if len(rec.ID) != 32 || strings.Trim(rec.ID, "0123456789abcdef") != "" || ids[rec.ID] {
					t.Errorf("decision id %q", rec.ID)
				}
				ids[rec.ID] = true
				if rec.Site != "demo" || rec.Session != fmt.Sprintf("s%d~1", n+1) || rec.AnonymousID != fmt.Sprintf("anon-s%d", n+1) ||
					rec.Page != "/cart" || rec.Fingerprint != sc.Fingerprint || rec.Group == "" || rec.Reason == "" ||
					rec.Propensity != 0.5 || rec.PropensityVersion != 4 || rec.UpliftVersion != 5 ||
					!(rec.Probability > 0 && rec.Probability <= 1) || len(rec.Interventions) != len(site.Interventions) {
					t.Errorf("record %d: %+v", n, rec)
				}
				if len(rec.Uplift) != len(site.Interventions) || cap(rec.Uplift) != len(rec.Uplift) {
					t.Fatalf("record %d uplift %v (cap %d)", n, rec.Uplift, cap(rec.Uplift))
				}
				for k, u := range rec.Uplift {
					if want := float64(n+1) + 0.01*float64(k+1); u != want {
						t.Errorf("record %d uplift[%d] = %v, want %v (changed by a later decision?)", n, k, u, want)
					}
				}
			}
			if last := store.recs[2]; res.DecisionID != last.ID || res.Group != last.Group || res.Probability != last.Probability {
				t.Errorf("result %+v does not match the last record %+v", res, last)
			}
		})
	}
}
