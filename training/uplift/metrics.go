package uplift

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/nudgehq/nudge/training"
)

// Metrics are the uplift metrics of one treatment arm against the control (definitions in the
// package doc). Counts are weighted.
type Metrics struct {
	N          int     // rows (treated + control)
	NTreated   float64 // weighted
	NControl   float64 // weighted
	ATE        float64 // conversion rate treated - control over all rows
	Qini       float64 // Qini coefficient
	AUUC       float64 // area under the uplift curve (normalised)
	AUUCRandom float64 // AUUC a random ranking has in expectation: ATE*(n+1)/(2n)
	UpliftAt10 float64 // rate treated - rate control within the top 10% by score
	UpliftAt20 float64
	UpliftAt30 float64
}

func (m *Metrics) fields() [8]*float64 {
	return [8]*float64{&m.ATE, &m.Qini, &m.AUUC, &m.AUUCRandom, &m.UpliftAt10, &m.UpliftAt20, &m.UpliftAt30, &m.NTreated}
}

// CurvePoint is one point of the Qini and uplift curves, at the top Fraction of rows.
type CurvePoint struct {
	Fraction float64
	Qini     float64 // Qini(k)
	Random   float64 // (k/n)*Qini(n)
	Uplift   float64 // U(k) = (Yt/Nt - Yc/Nc)*k
}

// ArmEval is the evaluation of one arm: point estimates, bootstrap percentile bounds (Lo, Hi;
// zero when Bootstrap is 0) and the curves.
type ArmEval struct {
	Arm string
	Metrics
	Lo, Hi    Metrics
	Bootstrap int
	Level     float64
	Curve     []CurvePoint
}

// EvalOptions configures the evaluation.
type EvalOptions struct {
	Bootstrap   int     // bootstrap replicates for the CIs (0 = none)
	Seed        uint64  // seeds the bootstrap
	Level       float64 // CI level (0 = 0.95)
	CurvePoints int     // curve points besides the origin (0 = 100)
	// IPS weights rows by W/P when the dataset has P (for data logged by a non-uniform policy).
	IPS bool
	// Eligible, when set, restricts arm k's evaluation to rows where arm k was eligible.
	Eligible func(x []float64, arm int) bool
}

// Evaluate computes the metrics of scores (predicted uplift of one arm) for rows that were
// treated (treated[i]) or control, with outcomes y and optional weights w (nil = 1).
func Evaluate(arm string, score []float64, treated []bool, y, w []float64, opt EvalOptions) (*ArmEval, error) {
	n := len(score)
	if len(treated) != n || len(y) != n || (w != nil && len(w) != n) {
		return nil, fmt.Errorf("uplift: evaluate: %w: lengths %d %d %d %d", ErrData, n, len(treated), len(y), len(w))
	}
	if n == 0 {
		return nil, fmt.Errorf("uplift: evaluate: %w: no rows", ErrData)
	}
	var hasT, hasC bool
	for i, t := range treated {
		if math.IsNaN(score[i]) {
			return nil, fmt.Errorf("uplift: evaluate: %w: row %d: NaN score", ErrData, i)
		}
		if t {
			hasT = true
		} else {
			hasC = true
		}
	}
	if !hasT || !hasC {
		return nil, fmt.Errorf("uplift: evaluate: %w: arm %q needs treated and control rows", ErrData, arm)
	}
	if opt.Level <= 0 || opt.Level >= 1 {
		opt.Level = 0.95
	}
	if opt.CurvePoints <= 0 {
		opt.CurvePoints = 100
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
	ev := &ArmEval{Arm: arm, Bootstrap: opt.Bootstrap, Level: opt.Level}
	c := calc{order: order, treated: treated, y: y, w: w}
	ev.Metrics = c.metrics(nil, opt.CurvePoints, &ev.Curve)
	if opt.Bootstrap > 0 {
		rng := rand.New(rand.NewPCG(opt.Seed, 0xb007))
		mult := make([]int32, n)
		reps := make([][8]float64, 0, opt.Bootstrap)
		for b := 0; b < opt.Bootstrap; b++ {
			clear(mult)
			for i := 0; i < n; i++ {
				mult[rng.IntN(n)]++
			}
			m := c.metrics(mult, 0, nil)
			var v [8]float64
			for j, f := range m.fields() {
				v[j] = *f
			}
			reps = append(reps, v)
		}
		ev.Lo.N, ev.Hi.N = n, n
		lo, hi := ev.Lo.fields(), ev.Hi.fields()
		col := make([]float64, 0, opt.Bootstrap)
		for j := range lo {
			col = col[:0]
			for _, v := range reps {
				if !math.IsNaN(v[j]) {
					col = append(col, v[j])
				}
			}
			sort.Float64s(col)
			*lo[j] = quantile(col, (1-opt.Level)/2)
			*hi[j] = quantile(col, 1-(1-opt.Level)/2)
		}
	}
	return ev, nil
}

// quantile of sorted xs with linear interpolation (NaN when empty).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	h := q * float64(len(xs)-1)
	i := int(math.Floor(h))
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-float64(i))*(xs[i+1]-xs[i])
}

type calc struct {
	order   []int
	treated []bool
	y, w    []float64
}

// metrics walks the rows in score order; mult (bootstrap multiplicities) nil means 1 each.
func (c *calc) metrics(mult []int32, points int, curve *[]CurvePoint) Metrics {
	n := 0
	if mult == nil {
		n = len(c.order)
	} else {
		for _, m := range mult {
			n += int(m)
		}
	}
	// totals first (for the random line)
	var nt, nc, yt, yc float64
	for _, i := range c.order {
		m := 1.0
		if mult != nil {
			m = float64(mult[i])
		}
		w := m
		if c.w != nil {
			w *= c.w[i]
		}
		if c.treated[i] {
			nt += w
			yt += w * c.y[i]
		} else {
			nc += w
			yc += w * c.y[i]
		}
	}
	res := Metrics{N: n, NTreated: nt, NControl: nc}
	qiniN := qini(yt, yc, nt, nc)
	res.ATE = math.NaN()
	if nt > 0 && nc > 0 {
		res.ATE = yt/nt - yc/nc
	}
	fn := float64(n)
	res.AUUCRandom = res.ATE * (fn + 1) / (2 * fn)
	k10, k20, k30 := topK(0.1, n), topK(0.2, n), topK(0.3, n)
	res.UpliftAt10, res.UpliftAt20, res.UpliftAt30 = math.NaN(), math.NaN(), math.NaN()
	if curve != nil {
		*curve = append((*curve)[:0], CurvePoint{})
	}
	var sumGap, sumU float64
	var ct, cc, cyt, cyc float64
	k := 0
	next := 1
	for _, i := range c.order {
		m := 1
		if mult != nil {
			m = int(mult[i])
		}
		w := 1.0
		if c.w != nil {
			w = c.w[i]
		}
		for r := 0; r < m; r++ {
			k++
			if c.treated[i] {
				ct += w
				cyt += w * c.y[i]
			} else {
				cc += w
				cyc += w * c.y[i]
			}
			q := qini(cyt, cyc, ct, cc)
			sumGap += q - float64(k)/fn*qiniN
			u := 0.0
			if ct > 0 && cc > 0 {
				u = (cyt/ct - cyc/cc) * float64(k)
			}
			sumU += u
			if k == k10 {
				res.UpliftAt10 = rateDiff(cyt, cyc, ct, cc)
			}
			if k == k20 {
				res.UpliftAt20 = rateDiff(cyt, cyc, ct, cc)
			}
			if k == k30 {
				res.UpliftAt30 = rateDiff(cyt, cyc, ct, cc)
			}
			if curve != nil && points > 0 {
				if next <= points && k >= int(math.Ceil(float64(next)*fn/float64(points))) {
					*curve = append(*curve, CurvePoint{Fraction: float64(k) / fn, Qini: q, Random: float64(k) / fn * qiniN, Uplift: u})
					for next <= points && k >= int(math.Ceil(float64(next)*fn/float64(points))) {
						next++
					}
				}
			}
		}
	}
	res.Qini = math.NaN()
	if nt > 0 {
		res.Qini = sumGap / fn / nt
	}
	res.AUUC = sumU / (fn * fn)
	return res
}

// qini is Y_t - Y_c * N_t/N_c (the control term is 0 while N_c is 0).
func qini(yt, yc, nt, nc float64) float64 {
	if nc <= 0 {
		return yt
	}
	return yt - yc*nt/nc
}

func rateDiff(yt, yc, nt, nc float64) float64 {
	if nt <= 0 || nc <= 0 {
		return math.NaN()
	}
	return yt/nt - yc/nc
}

// topK is ceil(f*n), at least 1.
func topK(f float64, n int) int {
	k := int(math.Ceil(f*float64(n) - 1e-9))
	return max(k, 1)
}

// Predictions returns the model's predicted uplift for every row of d: row i, arm k >= 1 at
// out[i*(len(Arms)-1)+k-1].
func Predictions(m Model, d *training.Dataset) ([]float64, error) {
	na := len(m.Arms()) - 1
	if d.D() != m.NumFeatures() {
		return nil, fmt.Errorf("uplift: predictions: dataset has %d features, model %d", d.D(), m.NumFeatures())
	}
	out := make([]float64, d.N()*na)
	for i := 0; i < d.N(); i++ {
		if err := m.Predict(d.Row(i), out[i*na:(i+1)*na]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EvaluateModel evaluates m on d, one ArmEval per treatment arm (rows of that arm and the
// control).
func EvaluateModel(m Model, d *training.Dataset, opt EvalOptions) ([]ArmEval, error) {
	if _, err := checkUplift(d); err != nil {
		return nil, fmt.Errorf("uplift: evaluate: %w", err)
	}
	if len(d.Arms) != len(m.Arms()) {
		return nil, fmt.Errorf("uplift: evaluate: %w: dataset has %d arms, model %d", ErrArms, len(d.Arms), len(m.Arms()))
	}
	pred, err := Predictions(m, d)
	if err != nil {
		return nil, fmt.Errorf("uplift: evaluate: %w", err)
	}
	return evaluatePredictions(d, pred, opt)
}

func evaluatePredictions(d *training.Dataset, pred []float64, opt EvalOptions) ([]ArmEval, error) {
	na := len(d.Arms) - 1
	out := make([]ArmEval, 0, na)
	for k := 1; k <= na; k++ {
		var score, y, w []float64
		var treated []bool
		for i, t := range d.T {
			if t != 0 && t != k || opt.Eligible != nil && !opt.Eligible(d.Row(i), k) {
				continue
			}
			score = append(score, pred[i*na+k-1])
			treated = append(treated, t == k)
			y = append(y, d.Y[i])
			wi := d.Weight(i)
			if opt.IPS && d.P != nil {
				wi /= d.P[i]
			}
			w = append(w, wi)
		}
		ev, err := Evaluate(d.Arms[k], score, treated, y, w, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, *ev)
	}
	return out, nil
}

// CVOptions configures CrossValidate.
type CVOptions struct {
	Folds        int     // K for K-fold (0 = 5); ignored when TimeOrdered
	TimeOrdered  bool    // train on the earliest rows by TS, test on the latest TestFraction
	TestFraction float64 // 0 = 0.2
	Seed         uint64  // shuffles the K folds
	Eval         EvalOptions
}

// CVResult is a cross-validated evaluation: the metrics of out-of-sample predictions, pooled
// over the folds (K-fold) or on the time-ordered test rows.
type CVResult struct {
	Learner  string
	Folds    int
	TestRows int
	Arms     []ArmEval
}

// CrossValidate fits l on training folds and evaluates its out-of-sample predictions.
func CrossValidate(ctx context.Context, l Learner, d *training.Dataset, opt CVOptions) (*CVResult, error) {
	if _, err := checkUplift(d); err != nil {
		return nil, fmt.Errorf("uplift: cross-validate: %w", err)
	}
	n, na := d.N(), len(d.Arms)-1
	res := &CVResult{Learner: l.Name()}
	if opt.TimeOrdered {
		if d.TS == nil {
			return nil, fmt.Errorf("uplift: cross-validate: %w: time-ordered split needs TS", ErrData)
		}
		f := opt.TestFraction
		if f <= 0 || f >= 1 {
			f = 0.2
		}
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return d.TS[idx[a]] < d.TS[idx[b]] })
		cut := n - int(math.Round(f*float64(n)))
		train, test := d.Subset(idx[:cut]), d.Subset(idx[cut:])
		m, err := l.Fit(ctx, train)
		if err != nil {
			return nil, fmt.Errorf("uplift: cross-validate: %w", err)
		}
		if res.Arms, err = EvaluateModel(m, test, opt.Eval); err != nil {
			return nil, fmt.Errorf("uplift: cross-validate: %w", err)
		}
		res.Folds, res.TestRows = 1, test.N()
		return res, nil
	}
	k := opt.Folds
	if k <= 0 {
		k = 5
	}
	if k < 2 || k > n {
		return nil, fmt.Errorf("uplift: cross-validate: %w: %d folds for %d rows", ErrData, k, n)
	}
	perm := rand.New(rand.NewPCG(opt.Seed, 0xf01d)).Perm(n)
	pred := make([]float64, n*na)
	for f := 0; f < k; f++ {
		var tr, te []int
		for j, i := range perm {
			if j%k == f {
				te = append(te, i)
			} else {
				tr = append(tr, i)
			}
		}
		m, err := l.Fit(ctx, d.Subset(tr))
		if err != nil {
			return nil, fmt.Errorf("uplift: cross-validate fold %d: %w", f, err)
		}
		for _, i := range te {
			if err := m.Predict(d.Row(i), pred[i*na:(i+1)*na]); err != nil {
				return nil, fmt.Errorf("uplift: cross-validate fold %d: %w", f, err)
			}
		}
	}
	var err error
	if res.Arms, err = evaluatePredictions(d, pred, opt.Eval); err != nil {
		return nil, fmt.Errorf("uplift: cross-validate: %w", err)
	}
	res.Folds, res.TestRows = k, n
	return res, nil
}
