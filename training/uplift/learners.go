package uplift

import (
	"context"
	"fmt"
	"math"

	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
)

// Learner fits a multi-arm uplift model on a dataset with T (arm per row, 0 = control), Arms
// and Y (0/1 outcome); some learners also use P (logged probability of the row's arm).
type Learner interface {
	Name() string
	Fit(ctx context.Context, d *training.Dataset) (Model, error)
}

// checkUplift validates the treatment columns and returns the rows of each arm.
func checkUplift(d *training.Dataset) ([][]int, error) {
	if d == nil || d.N() == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrData)
	}
	if len(d.X) != d.N()*d.D() {
		return nil, fmt.Errorf("%w: X has %d values for %d x %d", ErrData, len(d.X), d.N(), d.D())
	}
	if len(d.Arms) < 2 {
		return nil, fmt.Errorf("%w: %d arms, need a control and at least one treatment", ErrArms, len(d.Arms))
	}
	if len(d.T) != d.N() {
		return nil, fmt.Errorf("%w: %d treatments for %d rows", ErrData, len(d.T), d.N())
	}
	if d.P != nil && len(d.P) != d.N() {
		return nil, fmt.Errorf("%w: %d probabilities for %d rows", ErrData, len(d.P), d.N())
	}
	rows := make([][]int, len(d.Arms))
	for i, t := range d.T {
		if t < 0 || t >= len(d.Arms) {
			return nil, fmt.Errorf("%w: row %d: arm %d of %d", ErrArms, i, t, len(d.Arms))
		}
		rows[t] = append(rows[t], i)
	}
	for k, r := range rows {
		if len(r) == 0 {
			return nil, fmt.Errorf("%w: arm %q has no rows", ErrData, d.Arms[k])
		}
	}
	return rows, nil
}

// TLearner fits one outcome model per arm with Base (any propensity learner).
type TLearner struct{ Base training.Learner }

// Name is "t-learner(<base>)".
func (l TLearner) Name() string { return "t-learner(" + l.Base.Name() + ")" }

// Fit implements Learner.
func (l TLearner) Fit(ctx context.Context, d *training.Dataset) (Model, error) {
	m, err := l.fit(ctx, d)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (l TLearner) fit(ctx context.Context, d *training.Dataset) (*TModel, error) {
	rows, err := checkUplift(d)
	if err != nil {
		return nil, fmt.Errorf("uplift: t-learner: %w", err)
	}
	m := &TModel{base: base{features: d.Names, arms: d.Arms}, Outcome: make([]model.Binary, len(d.Arms))}
	for k, r := range rows {
		sub := d.Subset(r)
		sub.T, sub.P, sub.Arms = nil, nil, nil
		if m.Outcome[k], err = l.Base.Fit(ctx, sub, nil); err != nil {
			return nil, fmt.Errorf("uplift: t-learner arm %q: %w", d.Arms[k], err)
		}
	}
	return m, nil
}

// XLearner is the X-learner (Künzel et al. 2019) for several arms against the control:
//
//  1. outcome models mu_k per arm with Outcome (a T-learner);
//  2. imputed effects: on control rows D0 = mu_k(x) - y, on arm-k rows D1 = y - mu_0(x),
//     each regressed on x with Effect (default ViaClassifier{Outcome}, the documented reduction
//     of a bounded regression to the binary learner);
//  3. tau_k(x) = g_k(x)*tau0_k(x) + (1-g_k(x))*tau1_k(x), where g_k(x) = P(T=k | x, T in
//     {0,k}) comes from Propensity (a classifier of arm k vs control on those rows) when set,
//     else is the constant weighted share of arm-k rows among control and arm-k rows (exact
//     for a randomised assignment whose probabilities do not depend on x).
type XLearner struct {
	Outcome    training.Learner
	Effect     Regressor
	Propensity training.Learner
	// Eligible, when set, says whether arm k could have been assigned to a row (the site's
	// eligibility rules as a function of the feature row). Control rows not eligible for arm k
	// are left out of arm k's stage-2 and propensity fits: they carry no information about
	// that arm's effect and mu_k would be extrapolated there.
	Eligible func(x []float64, arm int) bool
}

// Name is "x-learner(<outcome>)".
func (l XLearner) Name() string { return "x-learner(" + l.Outcome.Name() + ")" }

// Fit implements Learner.
func (l XLearner) Fit(ctx context.Context, d *training.Dataset) (Model, error) {
	rows, err := checkUplift(d)
	if err != nil {
		return nil, fmt.Errorf("uplift: x-learner: %w", err)
	}
	tm, err := TLearner{Base: l.Outcome}.fit(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("uplift: x-learner stage 1: %w", err)
	}
	eff := l.Effect
	if eff == nil {
		eff = ViaClassifier{Learner: l.Outcome}
	}
	na := len(d.Arms) - 1
	m := &XModel{base: tm.base, Control: tm.Outcome[0], Tau0: make([]Regression, na), Tau1: make([]Regression, na)}
	if l.Propensity != nil {
		m.G = make([]model.Binary, na)
	} else {
		m.GConst = make([]float64, na)
	}
	for k := 1; k <= na; k++ {
		ctrlRows := rows[0]
		if l.Eligible != nil {
			ctrlRows = make([]int, 0, len(rows[0]))
			for _, i := range rows[0] {
				if l.Eligible(d.Row(i), k) {
					ctrlRows = append(ctrlRows, i)
				}
			}
			if len(ctrlRows) == 0 {
				return nil, fmt.Errorf("uplift: x-learner: %w: no eligible control rows for arm %q", ErrData, d.Arms[k])
			}
		}
		control := d.Subset(ctrlRows)
		// control rows: D0 = mu_k(x) - y
		d0 := &training.Dataset{Names: d.Names, Categorical: d.Categorical, X: control.X, W: control.W, Y: make([]float64, control.N())}
		for i := range d0.Y {
			mu, err := tm.Outcome[k].Score(control.Row(i))
			if err != nil {
				return nil, fmt.Errorf("uplift: x-learner: %w", err)
			}
			d0.Y[i] = mu - control.Y[i]
		}
		if m.Tau0[k-1], err = eff.FitRegression(ctx, d0); err != nil {
			return nil, fmt.Errorf("uplift: x-learner tau0 arm %q: %w", d.Arms[k], err)
		}
		treated := d.Subset(rows[k])
		d1 := &training.Dataset{Names: d.Names, Categorical: d.Categorical, X: treated.X, W: treated.W, Y: make([]float64, treated.N())}
		for i := range d1.Y {
			mu, err := tm.Outcome[0].Score(treated.Row(i))
			if err != nil {
				return nil, fmt.Errorf("uplift: x-learner: %w", err)
			}
			d1.Y[i] = treated.Y[i] - mu
		}
		if m.Tau1[k-1], err = eff.FitRegression(ctx, d1); err != nil {
			return nil, fmt.Errorf("uplift: x-learner tau1 arm %q: %w", d.Arms[k], err)
		}
		pair := append(append(make([]int, 0, len(ctrlRows)+len(rows[k])), ctrlRows...), rows[k]...)
		if l.Propensity != nil {
			dg := d.Subset(pair)
			for i := range dg.Y {
				dg.Y[i] = 0
				if dg.T[i] == k {
					dg.Y[i] = 1
				}
			}
			dg.T, dg.P, dg.Arms = nil, nil, nil
			if m.G[k-1], err = l.Propensity.Fit(ctx, dg, nil); err != nil {
				return nil, fmt.Errorf("uplift: x-learner propensity arm %q: %w", d.Arms[k], err)
			}
			continue
		}
		var wk, wall float64
		for _, i := range pair {
			w := d.Weight(i)
			wall += w
			if d.T[i] == k {
				wk += w
			}
		}
		m.GConst[k-1] = wk / wall
	}
	return m, nil
}

// TransformedOutcome regresses, for each arm k, the transformed outcome
//
//	Z_k = Y * (1{T=k}/P - 1{T=0}/P)
//
// on x, where P is the logged probability of the row's own arm (Dataset.P; rows of other arms
// get Z_k = 0). Since E[Z_k | x] = P(y|x,k) - P(y|x,control) whenever P is the true assignment
// probability, the regression estimates the uplift directly, inverse-propensity weighted.
// P below MinP (default 0.01) is clipped. When Dataset.P is nil the empirical arm shares are
// used (correct only for a uniform randomised assignment). Regressor defaults to Ridge{1};
// a ViaClassifier with Lo = Hi = 0 gets the range of Z. Baseline, when set, fits the control
// rows for Model.Baseline; otherwise Baseline is the control conversion rate.
type TransformedOutcome struct {
	Regressor Regressor
	Baseline  training.Learner
	MinP      float64
}

// Name is "transformed-outcome(<regressor>)".
func (l TransformedOutcome) Name() string {
	r := l.Regressor
	if r == nil {
		r = Ridge{}
	}
	return "transformed-outcome(" + r.Name() + ")"
}

// Fit implements Learner.
func (l TransformedOutcome) Fit(ctx context.Context, d *training.Dataset) (Model, error) {
	rows, err := checkUplift(d)
	if err != nil {
		return nil, fmt.Errorf("uplift: transformed outcome: %w", err)
	}
	minP := l.MinP
	if minP <= 0 {
		minP = 0.01
	}
	p := d.P
	if p == nil {
		p = make([]float64, d.N())
		for _, r := range rows {
			for _, i := range r {
				p[i] = float64(len(r)) / float64(d.N())
			}
		}
	}
	for i, v := range p {
		if !(v > 0 && v <= 1) {
			return nil, fmt.Errorf("uplift: transformed outcome: %w: row %d: probability %v", ErrData, i, v)
		}
	}
	na := len(d.Arms) - 1
	m := &TOModel{base: base{features: d.Names, arms: d.Arms}, Tau: make([]Regression, na)}
	z := &training.Dataset{Names: d.Names, Categorical: d.Categorical, X: d.X, W: d.W, Y: make([]float64, d.N())}
	for k := 1; k <= na; k++ {
		lo, hi := 0.0, 0.0
		for i := range z.Y {
			q := math.Max(p[i], minP)
			switch d.T[i] {
			case k:
				z.Y[i] = d.Y[i] / q
			case 0:
				z.Y[i] = -d.Y[i] / q
			default:
				z.Y[i] = 0
			}
			lo, hi = math.Min(lo, z.Y[i]), math.Max(hi, z.Y[i])
		}
		reg := l.Regressor
		if reg == nil {
			reg = Ridge{}
		}
		if v, ok := reg.(ViaClassifier); ok && v.Lo == 0 && v.Hi == 0 {
			v.Lo, v.Hi = lo, hi
			if hi <= lo {
				v.Lo, v.Hi = -1, 1
			}
			reg = v
		}
		if m.Tau[k-1], err = reg.FitRegression(ctx, z); err != nil {
			return nil, fmt.Errorf("uplift: transformed outcome arm %q: %w", d.Arms[k], err)
		}
	}
	if l.Baseline != nil {
		c := d.Subset(rows[0])
		c.T, c.P, c.Arms = nil, nil, nil
		if m.Control, err = l.Baseline.Fit(ctx, c, nil); err != nil {
			return nil, fmt.Errorf("uplift: transformed outcome baseline: %w", err)
		}
	} else {
		var sw, sy float64
		for _, i := range rows[0] {
			w := d.Weight(i)
			sw += w
			sy += w * d.Y[i]
		}
		m.BaselineRate = sy / sw
	}
	return m, nil
}
