package report

import (
	"fmt"
	"math"
)

// Methods of Lift.Method.
const (
	MethodNewcombe = "newcombe_hybrid_score"
	MethodHajek    = "hajek_ipw"
)

// visitorKey is the policy's sticky key: the user id when known, else the anonymous id.
func (d *decision) visitorKey() string {
	if d.rec.UserID != "" {
		return d.rec.UserID
	}
	if d.rec.AnonymousID != "" {
		return d.rec.AnonymousID
	}
	return "session:" + d.rec.Session
}

func (b *builder) lift(r *Report) {
	if len(b.decs) == 0 {
		return
	}
	r.Lift = append(r.Lift, b.policyLift(r))
	for k := range b.site.Interventions {
		if l, ok := b.armLift(r, k+1); ok {
			r.Lift = append(r.Lift, l)
		}
	}
}

// policyLift compares the sessions whose first decision in the range was in the treatment
// group with those whose first decision was in the holdout group.
func (b *builder) policyLift(r *Report) Lift {
	t, c := newPropSample(), newPropSample()
	seen := map[string]bool{}
	var treatedSessions []string
	for _, d := range b.decs {
		if seen[d.rec.Session] {
			continue
		}
		seen[d.rec.Session] = true
		if !d.yKnown {
			continue
		}
		switch d.rec.Group {
		case "treatment":
			t.add(d.visitorKey(), d.y)
			treatedSessions = append(treatedSessions, d.rec.Session)
		case "holdout":
			c.add(d.visitorKey(), d.y)
		}
	}
	l := Lift{Arm: "policy", Method: MethodNewcombe,
		Sessions: int64(t.n), Conversions: int64(t.x), Rate: t.rate(),
		HoldoutSessions: int64(c.n), HoldoutConverted: int64(c.x), HoldoutRate: c.rate()}
	// Cost: every intervention chosen in those sessions (all their decisions in the range).
	inArm := make(map[string]bool, len(treatedSessions))
	for _, s := range treatedSessions {
		inArm[s] = true
	}
	for _, d := range b.decs {
		if inArm[d.rec.Session] && d.arm > 0 {
			l.Cost += b.site.Interventions[d.arm-1].Cost
		}
	}
	switch {
	case c.n == 0:
		r.Notes = append(r.Notes, "no holdout sessions in the range: the policy's lift cannot be measured (is holdout_share 0?)")
		l.CI = Interval{Level: 0.95}
		l.IncrementalCI = Interval{Level: 0.95}
		l.PValue = 1
	case t.n == 0:
		r.Notes = append(r.Notes, "no treatment-group sessions in the range: the policy's lift cannot be measured")
		l.CI = Interval{Level: 0.95}
		l.IncrementalCI = Interval{Level: 0.95}
		l.PValue = 1
	default:
		l.Lift, l.CI, l.PValue = newcombe(t, c)
		b.finishLift(r, &l)
	}
	return l
}

// armLift estimates intervention k's effect against no intervention over the logged decisions
// where k was eligible, weighting each by the inverse of its logged assignment probability.
func (b *builder) armLift(r *Report, k int) (Lift, bool) {
	iv := &b.site.Interventions[k-1]
	var units []ipwUnit
	var nT, nC, xT, xC int64
	badP := 0
	for _, d := range b.decs {
		if !d.yKnown || (d.arm != 0 && d.arm != k) || !d.eligible[k-1] {
			continue
		}
		p := d.rec.Probability
		if !(p > 0 && p <= 1) {
			badP++
			continue
		}
		y := 0.0
		if d.y {
			y = 1
		}
		u := ipwUnit{cluster: d.visitorKey(), treated: d.arm == k, w: 1 / p, y: y}
		units = append(units, u)
		if u.treated {
			nT++
			xT += int64(y)
		} else {
			nC++
			xC += int64(y)
		}
	}
	if nT == 0 {
		return Lift{}, false
	}
	if badP > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("arm %s: %d decisions without a usable logged probability were left out", iv.ID, badP))
	}
	l := Lift{Arm: iv.ID, Method: MethodHajek, Sessions: nT, Conversions: xT, HoldoutSessions: nC, HoldoutConverted: xC,
		Cost: float64(nT) * iv.Cost}
	var se float64
	l.Rate, l.HoldoutRate, l.Lift, se = hajek(units)
	if nC == 0 || math.IsNaN(se) {
		r.Notes = append(r.Notes, fmt.Sprintf("arm %s: no comparable decisions without an intervention: no interval", iv.ID))
		l.CI = Interval{Level: 0.95}
		l.IncrementalCI = Interval{Level: 0.95}
		l.PValue = 1
		l.Lift = 0
		return l, true
	}
	l.CI = Interval{Low: l.Lift - z95*se, High: l.Lift + z95*se, Level: 0.95}
	l.PValue = 1
	if se > 0 {
		l.PValue = twoSidedP(l.Lift / se)
	}
	b.finishLift(r, &l)
	return l, true
}

// finishLift fills the derived figures and the small-sample note.
func (b *builder) finishLift(r *Report, l *Lift) {
	l.Relative = ratio(l.Lift, l.HoldoutRate)
	n := float64(l.Sessions)
	l.Incremental = l.Lift * n
	l.IncrementalCI = Interval{Low: l.CI.Low * n, High: l.CI.High * n, Level: l.CI.Level}
	l.IncrementalRevenue = l.Incremental * b.site.Macro.Value
	if l.Cost > 0 {
		l.ROI = (l.IncrementalRevenue - l.Cost) / l.Cost
	}
	if l.Sessions < MinArmSessions || l.HoldoutSessions < MinArmSessions {
		unit := "sessions"
		if l.Method == MethodHajek {
			unit = "decisions"
		}
		r.Notes = append(r.Notes, fmt.Sprintf("arm %s: %d treated and %d comparison %s (< %d on a side): its interval is not meaningful",
			l.Arm, l.Sessions, l.HoldoutSessions, unit, MinArmSessions))
	}
}
