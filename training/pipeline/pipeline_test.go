package pipeline

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/training/uplift"
)

var day0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC).UnixMilli()

const (
	minute = int64(60_000)
	hour   = 60 * minute
)

func ev(id, sess, anon string, typ features.EventType, name string, ts int64) features.Event {
	e := features.Event{EventID: id, SessionID: sess, AnonymousID: anon, Type: typ, Name: name, TS: ts, Consent: true,
		Props: map[string]string{"path": "/p/" + id, "device": "mobile"}}
	if typ == features.MacroConversion {
		e.Value = 60
	}
	return e
}

func appendAll(t *testing.T, st *store.Store, evs ...features.Event) {
	t.Helper()
	if _, err := st.Append(context.Background(), "demo", evs); err != nil {
		t.Fatal(err)
	}
}

// TestExamplesPointInTime checks decision points, replayed features (nothing after the point),
// labels in the window (same session and the visitor's later sessions), the skip rules, and
// the uplift rows from logged decisions.
func TestExamplesPointInTime(t *testing.T) {
	ctx := context.Background()
	site, sc := demoSite(t)
	st := openMem(t, sc)
	pvI, _ := sc.Index("page_views")
	convI, _ := sc.Index("converted_in_session")
	cartI, _ := sc.Index("ms_add_to_cart_count")

	// a: 6 events, converts after the 4th: points after 3 (label 1), after 6 skipped.
	appendAll(t, st,
		ev("a1", "sa", "va", features.PageView, "", day0),
		ev("a2", "sa", "va", features.PageView, "", day0+minute),
		ev("a3", "sa", "va", features.MicroConversion, "add_to_cart", day0+2*minute),
		ev("a4", "sa", "va", features.PageView, "", day0+3*minute),
		ev("a5", "sa", "va", features.MacroConversion, "purchase", day0+4*minute),
		ev("a6", "sa", "va", features.PageView, "", day0+5*minute),
	)
	// b: visitor vb, no conversion in the session; converts 30h later in another session.
	appendAll(t, st,
		ev("b1", "sb", "vb", features.PageView, "", day0+hour),
		ev("b2", "sb", "vb", features.PageView, "", day0+hour+minute),
		ev("b3", "sb", "vb", features.PageView, "", day0+hour+2*minute),
		ev("b4", "sb2", "vb", features.PageView, "", day0+31*hour),
		ev("b5", "sb2", "vb", features.MacroConversion, "purchase", day0+31*hour+minute),
	)
	// c: a late session whose window is not over (the log ends 10 days later).
	appendAll(t, st,
		ev("c1", "sc", "vc", features.PageView, "", day0+10*24*hour-hour),
		ev("c2", "sc", "vc", features.PageView, "", day0+10*24*hour-hour+minute),
		ev("c3", "sc", "vc", features.PageView, "", day0+10*24*hour-hour+2*minute),
		ev("z1", "sz", "vz", features.PageView, "", day0+10*24*hour),
	)
	// decisions: one in sb after its 2nd event (arm chat_offer, p 0.25), one in sa after the
	// conversion (skipped), one with an arm not in the catalogue (skipped for uplift).
	for _, d := range []store.DecisionRecord{
		{ID: "d1", Site: "demo", Session: "sb", TS: day0 + hour + minute, Arm: "chat_offer", Probability: 0.25, Interventions: []string{"chat_offer", "help_tip"}},
		{ID: "d2", Site: "demo", Session: "sa", TS: day0 + 4*minute + 30_000, Arm: "", Probability: 0.5},
		{ID: "d3", Site: "demo", Session: "sb", TS: day0 + hour + 90_000, Arm: "mystery", Probability: 0.5},
	} {
		if err := st.LogDecision(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	waitDecisions(t, st, 3)

	for _, tc := range []struct {
		name     string
		window   time.Duration
		wantSbY  float64
		wantRows int
	}{
		{"24h", 24 * time.Hour, 0, 4},
		{"48h", 48 * time.Hour, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := buildExamples(ctx, st, site, sc, scanRange{window: tc.window.Milliseconds(), afterEvent: []int{3, 6}, uplift: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// propensity rows: sa@3 (y=1), sb@3, sb@d1, sb@d3 ; sa@6 after conversion, sa@d2 after conversion, sc windows not over
			if ex.prop.N() != tc.wantRows {
				t.Fatalf("%d propensity rows, want %d (skipped %v)", ex.prop.N(), tc.wantRows, ex.skipped)
			}
			if ex.skipped["point after conversion"] != 1 || ex.skipped["decision after conversion"] != 1 || ex.skipped["window not over"] != 1 {
				t.Errorf("skipped %v", ex.skipped)
			}
			for i := range ex.prop.N() {
				row := ex.prop.Row(i)
				if row[convI] != 0 {
					t.Errorf("row %d sees a conversion", i)
				}
				want := make([]float64, sc.Len())
				switch ex.prop.TS[i] {
				case day0 + 2*minute: // sa after its 3rd event: the add_to_cart, not the purchase
					if ex.prop.Y[i] != 1 || row[pvI] != 2 || row[cartI] != 1 {
						t.Errorf("sa@3: y %v page views %v carts %v", ex.prop.Y[i], row[pvI], row[cartI])
					}
					_, evs, _ := st.Session(ctx, "demo", "sa")
					hist, _, _ := st.ReplayInput(ctx, "demo", "sa")
					if err := sc.Replay(hist, evs[:3], ex.prop.TS[i], want); err != nil {
						t.Fatal(err)
					}
				case day0 + hour + minute, day0 + hour + 90_000, day0 + hour + 2*minute:
					if ex.prop.Y[i] != tc.wantSbY {
						t.Errorf("sb point at %d: y %v, want %v", ex.prop.TS[i], ex.prop.Y[i], tc.wantSbY)
					}
					hist, evs, _ := st.ReplayInput(ctx, "demo", "sb")
					var upto []features.Event
					for _, e := range evs {
						if e.TS <= ex.prop.TS[i] {
							upto = append(upto, e)
						}
					}
					if err := sc.Replay(hist, upto, ex.prop.TS[i], want); err != nil {
						t.Fatal(err)
					}
				default:
					t.Fatalf("unexpected point at %d", ex.prop.TS[i])
				}
				for j := range want {
					if want[j] != row[j] {
						t.Errorf("point at %d: feature %s = %v, replay of the events so far gives %v", ex.prop.TS[i], sc.Names[j], row[j], want[j])
					}
				}
			}
			// uplift: only d1
			if ex.upl.N() != 1 || ex.upl.T[0] != 2 || ex.upl.P[0] != 0.25 || ex.upl.Y[0] != tc.wantSbY {
				t.Fatalf("uplift rows: T %v P %v Y %v", ex.upl.T, ex.upl.P, ex.upl.Y)
			}
			if got := ex.eligible[0]; !got[0] || got[1] || !got[2] || !got[3] {
				t.Errorf("eligible arms %v, want control, chat_offer, help_tip", got)
			}
			if ex.skipped["decision arm not in catalogue"] != 1 {
				t.Errorf("skipped %v", ex.skipped)
			}
		})
	}
}

func waitDecisions(t *testing.T, st *store.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		if err := st.Decisions(context.Background(), "demo", 0, 0, func(*store.DecisionRecord) error { got++; return nil }); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d decisions readable", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTrainPromoteRollback trains on a small simulated log, then exercises the registry
// journey: promote (schema check, OPE), LoadPromoted, rollback, export and import.
func TestTrainPromoteRollback(t *testing.T) {
	ctx := context.Background()
	site, sc := demoSite(t)
	st := openMem(t, sc)
	simulateSized(t, st, site.ID, 5, 400, 14, sim.NewRandomPolicy(5))

	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var stages []string
	// Learner logistic keeps this test fast under -race (the trees are exercised by the quality
	// test and the CLI tests); all three uplift learners are fitted.
	opts := Options{Site: site, Schema: sc, Learner: "logistic", UpliftLearner: "auto", Bootstrap: 10, Seed: 1,
		Now: func() time.Time { return now }, Progress: func(stage string, done, total int) {
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
		}}
	res, err := Train(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Report)
	if res.Propensity == nil || res.Uplift == nil {
		t.Fatalf("records: %+v %+v", res.Propensity, res.Uplift)
	}
	if len(res.PropensityEval) != 1 || len(res.UpliftEval) != 3 {
		t.Errorf("learners tried: %d propensity, %d uplift", len(res.PropensityEval), len(res.UpliftEval))
	}
	for _, s := range []string{"read sessions", "fit logistic", "fit t-learner/gbdt", "fit x-learner/gbdt", "fit transformed-outcome/gbdt"} {
		if !strings.Contains(strings.Join(stages, "|"), s) {
			t.Errorf("progress stages %v lack %q", stages, s)
		}
	}
	p := res.Propensity
	if p.Version != 1 || p.Kind != KindPropensity || p.Fingerprint != sc.Fingerprint || p.Rows == 0 ||
		!(p.Metrics["auc"] > 0.6) || p.CreatedAt != now.UnixMilli() || p.Params["window"] != "24h0m0s" {
		t.Errorf("propensity record %+v", p)
	}
	u := res.Uplift
	if u.Version != 2 || u.Kind != KindUplift || len(u.Arms) != 4 || u.Arms[0] != "control" || math.IsNaN(u.Metrics["ope_snips"]) {
		t.Errorf("uplift record %+v", u)
	}
	for _, k := range []string{"auc", "pr_auc", "log_loss", "brier", "qini", "SNIPS"} {
		if !strings.Contains(res.Report, k) {
			t.Errorf("report lacks %s", k)
		}
	}

	// Nothing promoted yet.
	b, err := LoadPromoted(ctx, st, site.ID)
	if err != nil || b.Propensity != nil || b.Uplift != nil {
		t.Fatalf("LoadPromoted before promotion: %+v %v", b, err)
	}
	// Schema mismatch refused.
	other, err := features.NewSchema(features.Spec{MacroConversion: "signup"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Promote(ctx, st, site.ID, p.Version, other, now); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("promote with another schema: %v", err)
	}
	if _, err := st.Promoted(ctx, site.ID, KindPropensity); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused promotion promoted: %v", err)
	}
	rep, err := Promote(ctx, st, site.ID, p.Version, sc, now)
	if err != nil || rep.Previous != 0 {
		t.Fatalf("promote: %+v %v", rep, err)
	}
	// Uplift: the OPE against the logging policy on recent decisions.
	rep, err = Promote(ctx, st, site.ID, u.Version, sc, now, WithSite(site), WithRecent(60*24*time.Hour, 24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Text)
	if rep.OPE == nil || rep.OPEAgainst != "logging policy" || rep.OPERows < 100 || !rep.OPEInSample || !strings.Contains(rep.Text, "optimistic") {
		t.Fatalf("uplift promotion report: %+v", rep)
	}
	b, err = LoadPromoted(ctx, st, site.ID)
	if err != nil || b.PropensityVersion != 1 || b.UpliftVersion != 2 || b.Propensity == nil || b.Uplift == nil {
		t.Fatalf("LoadPromoted: %+v %v", b, err)
	}
	x := make([]float64, sc.Len())
	if _, err := b.Propensity.Score(x); err != nil {
		t.Fatal(err)
	}

	// Export and import round trip: same scores.
	var buf bytes.Buffer
	full, err := st.Model(ctx, site.ID, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := Export(&buf, full); err != nil {
		t.Fatal(err)
	}
	imp, err := Import(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutModel(ctx, imp); err != nil || imp.Version != 3 {
		t.Fatalf("put imported: %d %v", imp.Version, err)
	}
	m2, err := uplift.Read(bytes.NewReader(imp.Artifact), nil)
	if err != nil {
		t.Fatal(err)
	}
	o1, o2 := make([]float64, 3), make([]float64, 3)
	for i := range x {
		x[i] = float64(i % 3)
	}
	if err := b.Uplift.Predict(x, o1); err != nil {
		t.Fatal(err)
	}
	if err := m2.Predict(x, o2); err != nil {
		t.Fatal(err)
	}
	for k := range o1 {
		if o1[k] != o2[k] {
			t.Errorf("imported model predicts %v, original %v", o2, o1)
		}
	}
	if _, err := Import(strings.NewReader(`{"format":"other"}`)); err == nil {
		t.Error("import of another format succeeded")
	}

	// Promote the imported copy (same schema): the OPE now compares with version 2.
	rep, err = Promote(ctx, st, site.ID, imp.Version, sc, now.Add(time.Hour), WithSite(site), WithRecent(60*24*time.Hour, 24*time.Hour))
	if err != nil || rep.Previous != 2 || rep.OPEAgainst != "version 2" {
		t.Fatalf("second uplift promotion: %+v %v", rep, err)
	}
	if d := rep.OPE.DiffSNIPS.Value; d != 0 {
		t.Errorf("identical models differ by %v in OPE", d)
	}
	back, err := Rollback(ctx, st, site.ID, KindUplift, now.Add(2*time.Hour))
	if err != nil || back.Version != 2 {
		t.Fatalf("rollback: %+v %v", back, err)
	}
	if _, err := Rollback(ctx, st, site.ID, KindUplift, now.Add(3*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rollback past the first promotion: %v", err)
	}
}

func TestTrainOptions(t *testing.T) {
	site, sc := demoSite(t)
	st := openMem(t, sc)
	ctx := context.Background()
	for _, o := range []Options{
		{Schema: sc},
		{Site: site, Schema: sc, Learner: "forest"},
		{Site: site, Schema: sc, UpliftLearner: "s"},
		{Site: site, Schema: sc, TestFraction: 1.5},
	} {
		if _, err := Train(ctx, st, o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v, want ErrOptions", o, err)
		}
	}
	if _, err := Train(ctx, st, Options{Site: site, Schema: sc}); !errors.Is(err, ErrNoData) {
		t.Errorf("empty log: %v, want ErrNoData", err)
	}
}
