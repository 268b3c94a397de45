package training

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/nudgehq/nudge/model"
)

// CalibrationOptions configures a calibrated learner.
type CalibrationOptions struct {
	Method string // model.Platt (default) or model.Isotonic
	// Holdout is the fraction of train kept aside to fit the calibration when Fit gets no
	// valid set (0 = 0.2). With a valid set, the base is fitted on all of train (and may
	// early-stop on valid) and the calibration is fitted on valid.
	Holdout float64
	Seed    uint64
}

// Calibrated fits a base learner and then a calibration map on held-out predictions, and
// returns a *model.Calibrated.
type Calibrated struct {
	base Learner
	opt  CalibrationOptions
}

// NewCalibrated wraps base.
func NewCalibrated(base Learner, opt CalibrationOptions) *Calibrated {
	if opt.Method == "" {
		opt.Method = model.Platt
	}
	if opt.Holdout <= 0 || opt.Holdout >= 1 {
		opt.Holdout = 0.2
	}
	return &Calibrated{base: base, opt: opt}
}

// Name is the base's name, "+", the method.
func (c *Calibrated) Name() string { return c.base.Name() + "+" + c.opt.Method }

// Fit fits the base and the calibration.
func (c *Calibrated) Fit(ctx context.Context, train, valid *Dataset) (model.Binary, error) {
	if c.opt.Method != model.Platt && c.opt.Method != model.Isotonic {
		return nil, fmt.Errorf("training: calibrate: unknown method %q", c.opt.Method)
	}
	if err := checkDataset(train); err != nil {
		return nil, fmt.Errorf("training: calibrate: %w", err)
	}
	fitSet, calSet, baseValid := train, valid, valid
	if valid == nil {
		rng := rand.New(rand.NewPCG(c.opt.Seed, c.opt.Seed^0x5851f42d4c957f2d))
		perm := rng.Perm(train.N())
		nc := int(float64(train.N()) * c.opt.Holdout)
		if nc < 2 || nc >= train.N() {
			return nil, fmt.Errorf("training: calibrate: %d rows too few to hold out", train.N())
		}
		ci, fi := perm[:nc], perm[nc:]
		slices.Sort(ci)
		slices.Sort(fi)
		fitSet, calSet, baseValid = train.Subset(fi), train.Subset(ci), nil
	}
	base, err := c.base.Fit(ctx, fitSet, baseValid)
	if err != nil {
		return nil, fmt.Errorf("training: calibrate: %w", err)
	}
	s, err := Scores(base, calSet)
	if err != nil {
		return nil, fmt.Errorf("training: calibrate: %w", err)
	}
	cal := model.Calibrated{Base: base, Method: c.opt.Method}
	if c.opt.Method == model.Platt {
		cal.A, cal.B = FitPlatt(s, calSet.Y, calSet.W)
	} else {
		cal.X, cal.Y = FitIsotonic(s, calSet.Y, calSet.W)
	}
	m, err := model.NewCalibrated(cal)
	if err != nil {
		return nil, fmt.Errorf("training: calibrate: %w", err)
	}
	return m, nil
}

// FitPlatt fits p = Sigmoid(a*Logit(s) + b) to labels y by weighted maximum likelihood
// (Newton's method with step halving), using Platt's smoothed targets
// (N+ + 1)/(N+ + 2) and 1/(N- + 2) against overfitting small sets.
func FitPlatt(s, y, w []float64) (a, b float64) {
	var np, nn float64
	for i := range y {
		if y[i] > 0.5 {
			np += weightAt(w, i)
		} else {
			nn += weightAt(w, i)
		}
	}
	hi, lo := (np+1)/(np+2), 1/(nn+2)
	t := make([]float64, len(y))
	z := make([]float64, len(s))
	for i := range y {
		if y[i] > 0.5 {
			t[i] = hi
		} else {
			t[i] = lo
		}
		z[i] = model.Logit(s[i])
	}
	loss := func(a, b float64) float64 {
		f := 0.0
		for i := range z {
			v := a*z[i] + b
			// -(t log p + (1-t) log(1-p)) = log(1+e^v) - t v
			l := math.Log1p(math.Exp(-math.Abs(v))) + max(v, 0) - t[i]*v
			f += weightAt(w, i) * l
		}
		return f
	}
	a, b = 1, 0
	f := loss(a, b)
	for iter := 0; iter < 100; iter++ {
		var ga, gb, haa, hab, hbb float64
		for i := range z {
			wi := weightAt(w, i)
			p := model.Sigmoid(a*z[i] + b)
			d := wi * (p - t[i])
			h := wi * max(p*(1-p), 1e-12)
			ga += d * z[i]
			gb += d
			haa += h * z[i] * z[i]
			hab += h * z[i]
			hbb += h
		}
		det := haa*hbb - hab*hab
		if det <= 1e-18 {
			break
		}
		da := (hbb*ga - hab*gb) / det
		db := (haa*gb - hab*ga) / det
		step := 1.0
		improved := false
		for k := 0; k < 30; k++ {
			na, nb := a-step*da, b-step*db
			if nf := loss(na, nb); nf <= f {
				a, b, improved = na, nb, f-nf > 1e-12*math.Abs(f)
				f = nf
				break
			}
			step /= 2
		}
		if !improved || math.Abs(ga)+math.Abs(gb) < 1e-10 {
			break
		}
	}
	return a, b
}

// FitIsotonic fits a non-decreasing map from scores to outcome rates by pool-adjacent-
// violators (weighted) and returns its knots: for each pooled block, its lowest and highest
// score with the block's rate, so Map interpolates only between blocks.
func FitIsotonic(s, y, w []float64) (xs, ys []float64) {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case s[a] < s[b]:
			return -1
		case s[a] > s[b]:
			return 1
		}
		return 0
	})
	type block struct{ lo, hi, sy, sw float64 }
	var st []block
	for k := 0; k < len(idx); {
		// tied scores form one initial block
		j := k
		b := block{lo: s[idx[k]], hi: s[idx[k]]}
		for ; j < len(idx) && s[idx[j]] == s[idx[k]]; j++ {
			wi := weightAt(w, idx[j])
			b.sy += wi * y[idx[j]]
			b.sw += wi
		}
		k = j
		if b.sw == 0 {
			continue
		}
		st = append(st, b)
		for len(st) > 1 {
			p, q := st[len(st)-2], st[len(st)-1]
			if p.sy/p.sw < q.sy/q.sw {
				break
			}
			st = st[:len(st)-2]
			st = append(st, block{lo: p.lo, hi: q.hi, sy: p.sy + q.sy, sw: p.sw + q.sw})
		}
	}
	for _, b := range st {
		r := b.sy / b.sw
		xs = append(xs, b.lo)
		ys = append(ys, r)
		if b.hi > b.lo {
			xs = append(xs, b.hi)
			ys = append(ys, r)
		}
	}
	return xs, ys
}
