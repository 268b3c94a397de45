package training

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/optimize"

	"github.com/nudgehq/nudge/model"
)

// LogisticOptions configures L2-regularised logistic regression.
type LogisticOptions struct {
	// L2 is the penalty on the (standardised) coefficients: the objective is
	// sum_i w_i*logloss_i + L2/2*||beta||^2, so L2 = 1 matches scikit-learn's C = 1.
	// Zero means 1; use a tiny positive value for (almost) no penalty.
	L2 float64
	// MaxIter bounds L-BFGS major iterations (0 = 200).
	MaxIter int
	// GradTol stops when the gradient's infinity norm falls below it (0 = 1e-6 per row).
	GradTol float64
	// Workers for the gradient (0 = min(2, GOMAXPROCS)).
	Workers int
}

// Logistic fits model.Logistic with gonum's L-BFGS on standardised, one-hot expanded inputs.
type Logistic struct{ opt LogisticOptions }

// NewLogistic returns a logistic-regression learner.
func NewLogistic(opt LogisticOptions) *Logistic {
	if opt.L2 <= 0 {
		opt.L2 = 1
	}
	if opt.MaxIter <= 0 {
		opt.MaxIter = 200
	}
	if opt.Workers <= 0 {
		opt.Workers = min(2, runtime.GOMAXPROCS(0))
	}
	return &Logistic{opt: opt}
}

// Name is "logreg".
func (l *Logistic) Name() string { return "logreg" }

// Options returns the effective options.
func (l *Logistic) Options() LogisticOptions { return l.opt }

// ErrEmpty is returned when a dataset has no rows or only one class.
var ErrEmpty = errors.New("training: dataset has no rows or a single class")

// categoryLevels returns, per feature, the number of category codes (max code + 1) seen in ds,
// 0 for numeric features. Codes must be non-negative integers (NaN allowed: no category).
func categoryLevels(ds *Dataset) ([]int, error) {
	d := ds.D()
	lv := make([]int, d)
	if ds.Categorical == nil {
		return lv, nil
	}
	n := ds.N()
	for j := 0; j < d; j++ {
		if !ds.Categorical[j] {
			continue
		}
		for i := 0; i < n; i++ {
			v := ds.X[i*d+j]
			if math.IsNaN(v) {
				continue
			}
			k := int(v)
			if float64(k) != v || k < 0 || k > 1<<20 {
				return nil, fmt.Errorf("training: feature %q row %d: category code %v is not a small non-negative integer", ds.Names[j], i, v)
			}
			if k+1 > lv[j] {
				lv[j] = k + 1
			}
		}
	}
	return lv, nil
}

func checkDataset(ds *Dataset) error {
	if ds == nil || ds.N() == 0 {
		return ErrEmpty
	}
	if len(ds.X) != ds.N()*ds.D() {
		return fmt.Errorf("training: X has %d values, want %d rows x %d features", len(ds.X), ds.N(), ds.D())
	}
	if ds.Categorical != nil && len(ds.Categorical) != ds.D() {
		return fmt.Errorf("training: %d categorical flags for %d features", len(ds.Categorical), ds.D())
	}
	if ds.W != nil && len(ds.W) != ds.N() {
		return fmt.Errorf("training: %d weights for %d rows", len(ds.W), ds.N())
	}
	pos, neg := false, false
	for i, y := range ds.Y {
		switch y {
		case 0:
			neg = true
		case 1:
			pos = true
		default:
			return fmt.Errorf("training: row %d: label %v is not 0 or 1", i, y)
		}
	}
	if !pos || !neg {
		return ErrEmpty
	}
	return nil
}

// Fit fits the model on train; valid is unused.
func (l *Logistic) Fit(ctx context.Context, train, valid *Dataset) (model.Binary, error) {
	if err := checkDataset(train); err != nil {
		return nil, fmt.Errorf("training: logreg: %w", err)
	}
	levels, err := categoryLevels(train)
	if err != nil {
		return nil, fmt.Errorf("training: logreg: %w", err)
	}
	n, d := train.N(), train.D()
	p := 0
	for j := 0; j < d; j++ {
		if levels[j] > 0 || (train.Categorical != nil && train.Categorical[j]) {
			p += levels[j]
		} else {
			p++
		}
	}
	// Expanded, standardised design, row-major, with a trailing 1 for the intercept.
	q := p + 1
	z := make([]float64, n*q)
	for i := 0; i < n; i++ {
		row, out := train.X[i*d:(i+1)*d], z[i*q:(i+1)*q]
		c := 0
		for j, v := range row {
			if train.Categorical != nil && train.Categorical[j] {
				if k := int(v); !math.IsNaN(v) && k < levels[j] {
					out[c+k] = 1
				}
				c += levels[j]
				continue
			}
			out[c] = v
			c++
		}
		out[p] = 1
	}
	// weighted means and scales
	mean, scale := make([]float64, p), make([]float64, p)
	sw := 0.0
	for i := 0; i < n; i++ {
		w := train.Weight(i)
		sw += w
		r := z[i*q : i*q+p]
		for c, v := range r {
			mean[c] += w * v
		}
	}
	for c := range mean {
		mean[c] /= sw
	}
	for i := 0; i < n; i++ {
		w := train.Weight(i)
		r := z[i*q : i*q+p]
		for c, v := range r {
			dv := v - mean[c]
			scale[c] += w * dv * dv
		}
	}
	for c := range scale {
		s := math.Sqrt(scale[c] / sw)
		if s < 1e-12 || math.IsNaN(s) {
			s = 1 // constant column: centred to zero, coefficient irrelevant
		}
		scale[c] = s
	}
	for i := 0; i < n; i++ {
		r := z[i*q : i*q+p]
		for c := range r {
			r[c] = (r[c] - mean[c]) / scale[c]
		}
	}
	for i := 0; i < n; i++ {
		for c := 0; c < q; c++ {
			if v := z[i*q+c]; math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("training: logreg: feature column %d row %d: non-finite value", c, i)
			}
		}
	}

	obj := newLogObjective(z, train.Y, train.W, n, q, l.opt.L2, l.opt.Workers)
	problem := optimize.Problem{
		Func: func(x []float64) float64 { return obj.eval(x) },
		Grad: func(g, x []float64) { obj.grad(g, x) },
	}
	tol := l.opt.GradTol
	if tol <= 0 {
		tol = 1e-6 * sw
		if tol < 1e-8 {
			tol = 1e-8
		}
	}
	settings := &optimize.Settings{
		GradientThreshold: tol,
		MajorIterations:   l.opt.MaxIter,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-10 * sw, Relative: 1e-10, Iterations: 20},
		Recorder:          nil,
	}
	_ = ctx
	res, err := optimize.Minimize(problem, make([]float64, q), settings, &optimize.LBFGS{})
	if err != nil && res == nil {
		return nil, fmt.Errorf("training: logreg: optimise: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("training: logreg: %w", err)
	}
	beta := res.X
	var cat []bool
	if train.Categorical != nil {
		cat = append([]bool(nil), train.Categorical...)
	}
	m, err := model.NewLogistic(model.Logistic{
		Features: append([]string(nil), train.Names...), Categorical: cat, Levels: levels,
		Mean: mean, Scale: scale, Coef: append([]float64(nil), beta[:p]...), Intercept: beta[p],
	})
	if err != nil {
		return nil, fmt.Errorf("training: logreg: %w", err)
	}
	return m, nil
}

// logObjective is the penalised weighted log loss over a standardised design with an intercept
// column last. eval computes the loss and the gradient together (one pass over the rows,
// split across workers) and caches the gradient for the following grad call at the same x.
type logObjective struct {
	z       []float64
	y, w    []float64
	n, q    int
	l2      float64
	workers int
	lastX   []float64
	lastG   []float64
	lastF   float64
	valid   bool
	partG   [][]float64
	partF   []float64
}

func newLogObjective(z, y, w []float64, n, q int, l2 float64, workers int) *logObjective {
	if workers < 1 {
		workers = 1
	}
	o := &logObjective{z: z, y: y, w: w, n: n, q: q, l2: l2, workers: workers,
		lastX: make([]float64, q), lastG: make([]float64, q), partF: make([]float64, workers)}
	o.partG = make([][]float64, workers)
	for k := range o.partG {
		o.partG[k] = make([]float64, q)
	}
	return o
}

func (o *logObjective) same(x []float64) bool {
	if !o.valid {
		return false
	}
	for i, v := range x {
		if o.lastX[i] != v {
			return false
		}
	}
	return true
}

func (o *logObjective) compute(x []float64) {
	if o.same(x) {
		return
	}
	var wg sync.WaitGroup
	chunk := (o.n + o.workers - 1) / o.workers
	for k := 0; k < o.workers; k++ {
		lo, hi := k*chunk, min((k+1)*chunk, o.n)
		wg.Add(1)
		go func(k, lo, hi int) {
			defer wg.Done()
			o.partF[k] = o.rows(x, o.partG[k], lo, hi)
		}(k, lo, hi)
	}
	wg.Wait()
	f := 0.0
	g := o.lastG
	clear(g)
	for k := 0; k < o.workers; k++ {
		f += o.partF[k]
		for c, v := range o.partG[k] {
			g[c] += v
		}
	}
	for c := 0; c < o.q-1; c++ { // no penalty on the intercept
		f += 0.5 * o.l2 * x[c] * x[c]
		g[c] += o.l2 * x[c]
	}
	copy(o.lastX, x)
	o.lastF = f
	o.valid = true
}

// rows accumulates the loss and its gradient over rows [lo, hi).
func (o *logObjective) rows(x, g []float64, lo, hi int) float64 {
	clear(g)
	q := o.q
	x = x[:q]
	g = g[:q]
	f := 0.0
	for i := lo; i < hi; i++ {
		r := o.z[i*q : i*q+q]
		s := 0.0
		for c, v := range r {
			s += v * x[c]
		}
		// loss = log(1+e^s) - y*s, stable
		var loss, p float64
		if s > 0 {
			e := math.Exp(-s)
			loss = s + math.Log1p(e)
			p = 1 / (1 + e)
		} else {
			e := math.Exp(s)
			loss = math.Log1p(e)
			p = e / (1 + e)
		}
		y := o.y[i]
		loss -= y * s
		d := p - y
		if o.w != nil {
			loss *= o.w[i]
			d *= o.w[i]
		}
		f += loss
		for c, v := range r {
			g[c] += d * v
		}
	}
	return f
}

func (o *logObjective) eval(x []float64) float64 {
	o.compute(x)
	return o.lastF
}

func (o *logObjective) grad(g, x []float64) {
	o.compute(x)
	copy(g, o.lastG)
}
