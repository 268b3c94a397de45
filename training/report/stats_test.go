package report

import (
	"fmt"
	"math"
	"testing"

	"github.com/nudgehq/nudge/data/store"
)

func sample(n, x int, clusterSize int) *propSample {
	s := newPropSample()
	for i := range n {
		s.add(fmt.Sprint(i/clusterSize), i < x)
	}
	return s
}

// Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10 (hybrid score):
// 56/70 − 48/80 = 0.2000, 95% CI 0.0524 to 0.3339; 9/10 − 3/10: 0.1705 to 0.8090;
// 5/56 − 0/29: −0.0381 to 0.1926.
func TestNewcombePublished(t *testing.T) {
	for _, c := range []struct {
		x1, n1, x0, n0 int
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{5, 56, 0, 29, -0.0381, 0.1926},
	} {
		t.Run(fmt.Sprintf("%d/%d-%d/%d", c.x1, c.n1, c.x0, c.n0), func(t *testing.T) {
			tr, co := sample(c.n1, c.x1, 1), sample(c.n0, c.x0, 1)
			if !near(tr.deff(), 1) || !near(co.deff(), 1) {
				t.Fatalf("singleton clusters: deff %v %v", tr.deff(), co.deff())
			}
			_, ci, p := newcombe(tr, co)
			if math.Abs(ci.Low-c.lo) > 5e-5 || math.Abs(ci.High-c.hi) > 5e-5 {
				t.Errorf("CI [%.4f, %.4f], published [%.4f, %.4f]", ci.Low, ci.High, c.lo, c.hi)
			}
			if excludes0 := ci.Low > 0; excludes0 != (p < 0.05) {
				t.Errorf("p = %v, interval [%.4f, %.4f]", p, ci.Low, ci.High)
			}
		})
	}
	// Clustered: visitors of 4 sessions that all convert or none (perfect correlation) have
	// a design effect of 4, so the interval is that of a quarter of the sessions.
	tr, co := sample(400, 200, 4), sample(400, 120, 4)
	checkNear(t, "deff", tr.deff(), 4)
	_, wide, _ := newcombe(tr, co)
	_, narrow, _ := newcombe(sample(100, 50, 1), sample(100, 30, 1))
	checkNear(t, "clustered low", wide.Low, narrow.Low)
	checkNear(t, "clustered high", wide.High, narrow.High)
}

// The Hájek difference and its sandwich variance computed by hand.
func TestHajekByHand(t *testing.T) {
	units := []ipwUnit{
		{"a", true, 2, 1}, {"b", true, 4, 0}, // μ̂_a = 2/6
		{"c", false, 1, 1}, {"d", false, 1, 0}, {"e", false, 2, 0}, // μ̂_0 = 1/4
	}
	mu1, mu0, diff, se := hajek(units)
	checkNear(t, "mu1", mu1, 1.0/3)
	checkNear(t, "mu0", mu0, 0.25)
	checkNear(t, "diff", diff, 1.0/12)
	// ψ = 2/9, −2/9, −3/16, 1/16, 1/8; V = 5/4 · Σψ²
	checkNear(t, "se", se, math.Sqrt(5.0/4*(8.0/81+14.0/256)))
	// the same units in one visitor cluster for a and c: ψ_a + ψ_c = 2/9 − 3/16
	units[2].cluster = "a"
	_, _, _, se = hajek(units)
	v := math.Pow(2.0/9-3.0/16, 2) + math.Pow(2.0/9, 2) + 1.0/256 + 4.0/256
	checkNear(t, "clustered se", se, math.Sqrt(4.0/3*v))
}

// Eligibility of logged decisions: the shown arm is eligible, caps replayed on the logged
// choices, a logged list shorter than the catalogue restricts the set.
func TestDecisionEligibility(t *testing.T) {
	site, sc := testSite(t) // discount10: 1 per session, 2 per visitor and day; chat_offer 1 per session
	q := Query{}
	if err := q.normalise(); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(site, sc, q, day("2026-03-10T00:00:00Z"), day("2026-03-11T00:00:00Z"))
	at := func(hm string) int64 { return day("2026-03-10T" + hm + ":00Z").UnixMilli() }
	all := []bool{true, true, true}
	mk := func(sess, anon string, ts int64, arm int, list ...string) *decision {
		d := &decision{rec: store.DecisionRecord{Session: sess, AnonymousID: anon, TS: ts, Interventions: list}, arm: arm}
		d.eligible = append([]bool(nil), all...)
		if list == nil {
			d.rec.Interventions = []string{"discount10", "chat_offer", "help_tip"}
		}
		return d
	}
	b.decs = []*decision{
		mk("s1", "A", at("10:00"), 1),               // discount10 shown
		mk("s1", "A", at("10:05"), 0),               // discount10 capped in s1
		mk("s2", "A", at("11:00"), 1),               // second of the day for A
		mk("s3", "A", at("12:00"), 0),               // A reached 2 per day
		mk("s4", "B", at("12:00"), 0, "chat_offer"), // logged eligible set
		mk("s5", "B", at("13:00"), 3, "chat_offer"), // shown although not listed
	}
	b.decs[4].eligible = []bool{true, true, false}
	b.outcomes()
	want := [][]bool{{true, true, true}, {false, true, true}, {true, true, true}, {false, true, true}, {false, true, false}, {false, true, true}}
	for i, d := range b.decs {
		if fmt.Sprint(d.eligible) != fmt.Sprint(want[i]) {
			t.Errorf("decision %d: eligible %v, want %v", i, d.eligible, want[i])
		}
	}
}
