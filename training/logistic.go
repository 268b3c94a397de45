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
	// GradTol stops when the gradient's infinity norm falls below it (0 = 1e-7 x total weight).
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
	cat := func(j int) bool { return train.Categorical != nil && train.Categorical[j] }
	// Expanded columns: a numeric feature is one column, a categorical one a column per code.
	// The standardised design is never materialised: the objective folds mean and scale into
	// the coefficients and reads numeric values straight from train.X.
	o := &logObjective{ctx: ctx, x: train.X, d: d, n: n, y: train.Y, w: train.W, l2: l.opt.L2, workers: l.opt.Workers}
	colOf := make([]int, d) // first expanded column of each feature
	p := 0
	for j := 0; j < d; j++ {
		colOf[j] = p
		if cat(j) {
			o.catF = append(o.catF, j)
			p += levels[j]
		} else {
			o.numF = append(o.numF, j)
			o.numC = append(o.numC, p)
			p++
		}
	}
	o.p = p
	mean, scale := make([]float64, p), make([]float64, p)
	// categorical codes as expanded column indices (-1 = missing)
	dc := len(o.catF)
	o.cats = make([]int32, n*dc)
	sw := 0.0
	swNum := make([]float64, len(o.numF)) // weight of non-missing values per numeric feature
	for i := 0; i < n; i++ {
		w := train.Weight(i)
		sw += w
		row := train.X[i*d : (i+1)*d]
		for k, j := range o.numF {
			if v := row[j]; v == v {
				if math.IsInf(v, 0) {
					return nil, fmt.Errorf("training: logreg: feature %q row %d: infinite value", train.Names[j], i)
				}
				mean[o.numC[k]] += w * v
				swNum[k] += w
			}
		}
		for k, j := range o.catF {
			c := int32(-1)
			if v := row[j]; v == v {
				c = int32(colOf[j] + int(v))
				mean[c] += w
			}
			o.cats[i*dc+k] = c
		}
	}
	for k := range o.numF {
		if swNum[k] > 0 {
			mean[o.numC[k]] /= swNum[k]
		}
	}
	for _, j := range o.catF {
		for c := colOf[j]; c < colOf[j]+levels[j]; c++ {
			mean[c] /= sw
			scale[c] = mean[c] * (1 - mean[c]) // variance of an indicator
		}
	}
	for i := 0; i < n; i++ {
		w := train.Weight(i)
		row := train.X[i*d : (i+1)*d]
		for k, j := range o.numF {
			if v := row[j]; v == v {
				dv := v - mean[o.numC[k]]
				scale[o.numC[k]] += w * dv * dv
			}
		}
	}
	for k := range o.numF {
		scale[o.numC[k]] /= sw
	}
	for c := range scale {
		sd := math.Sqrt(scale[c])
		if sd < 1e-12 || math.IsNaN(sd) {
			sd = 1 // constant column: centred to zero, its coefficient is only penalised
		}
		scale[c] = sd
	}
	o.mean, o.scale = mean, scale
	o.init()
	q := p + 1
	obj := o
	problem := optimize.Problem{
		Func: func(x []float64) float64 { return obj.eval(x) },
		Grad: func(g, x []float64) { obj.grad(g, x) },
	}
	tol := l.opt.GradTol
	if tol <= 0 {
		tol = 1e-7 * sw
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
	res, err := optimize.Minimize(problem, make([]float64, q), settings, &optimize.LBFGS{})
	if err != nil && res == nil {
		return nil, fmt.Errorf("training: logreg: optimise: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("training: logreg: %w", err)
	}
	beta := res.X
	var catFlags []bool
	if train.Categorical != nil {
		catFlags = append([]bool(nil), train.Categorical...)
	}
	m, err := model.NewLogistic(model.Logistic{
		Features: append([]string(nil), train.Names...), Categorical: catFlags, Levels: levels,
		Mean: mean, Scale: scale, Coef: append([]float64(nil), beta[:p]...), Intercept: beta[p],
	})
	if err != nil {
		return nil, fmt.Errorf("training: logreg: %w", err)
	}
	return m, nil
}

// logObjective is the penalised weighted log loss of logistic regression on the standardised,
// one-hot expanded design, with the intercept as the last coefficient. The design is implicit:
// with a_c = beta_c/scale_c the linear predictor of row i is
// beta_0 - sum_c a_c*mean_c + sum_numeric a_c*x_ic + sum_categorical a_(code column), and the
// gradient is (sum_i d_i*x_ic - mean_c*sum_i d_i)/scale_c. eval computes the loss and the
// gradient together (one pass over the rows, split across workers) and caches the gradient for
// the grad call at the same x.
type logObjective struct {
	ctx     context.Context // when done, the objective turns NaN and the optimiser stops
	x       []float64       // raw rows, n x d
	d, n, p int
	numF    []int     // numeric feature indices
	numC    []int     // their expanded columns
	catF    []int     // categorical feature indices
	cats    []int32   // n x len(catF): expanded column of the row's code, -1 = missing
	mean    []float64 // per expanded column
	scale   []float64
	y, w    []float64
	l2      float64
	workers int

	a     []float64 // effective per-column slopes for the current x
	aNum  []float64 // a at numeric features, in numF order
	fill  []float64 // per numeric feature: the mean (imputes NaN)
	lastX []float64
	lastG []float64
	lastF float64
	valid bool
	partN [][]float64 // per worker: sum d*x per numeric feature
	partC [][]float64 // per worker: sum d per expanded column (categorical)
	partD []float64   // per worker: sum d
	partF []float64
}

func (o *logObjective) init() {
	if o.workers < 1 {
		o.workers = 1
	}
	q := o.p + 1
	o.a = make([]float64, o.p)
	o.aNum = make([]float64, len(o.numF))
	o.fill = make([]float64, len(o.numF))
	for k := range o.numF {
		o.fill[k] = o.mean[o.numC[k]]
	}
	o.lastX, o.lastG = make([]float64, q), make([]float64, q)
	o.partN, o.partC = make([][]float64, o.workers), make([][]float64, o.workers)
	o.partD, o.partF = make([]float64, o.workers), make([]float64, o.workers)
	for k := 0; k < o.workers; k++ {
		o.partN[k] = make([]float64, len(o.numF))
		o.partC[k] = make([]float64, o.p)
	}
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
	p := o.p
	b0 := x[p]
	for c := 0; c < p; c++ {
		o.a[c] = x[c] / o.scale[c]
		b0 -= o.a[c] * o.mean[c]
	}
	for k, c := range o.numC {
		o.aNum[k] = o.a[c]
	}
	var wg sync.WaitGroup
	chunk := (o.n + o.workers - 1) / o.workers
	for k := 0; k < o.workers; k++ {
		lo, hi := k*chunk, min((k+1)*chunk, o.n)
		wg.Add(1)
		go func(k, lo, hi int) {
			defer wg.Done()
			o.partF[k], o.partD[k] = o.rows(b0, o.partN[k], o.partC[k], lo, hi)
		}(k, lo, hi)
	}
	wg.Wait()
	f, sd := 0.0, 0.0
	g := o.lastG
	clear(g)
	for k := 0; k < o.workers; k++ {
		f += o.partF[k]
		sd += o.partD[k]
		for i, c := range o.numC {
			g[c] += o.partN[k][i]
		}
		for c, v := range o.partC[k] {
			g[c] += v
		}
	}
	for c := 0; c < p; c++ {
		g[c] = (g[c]-o.mean[c]*sd)/o.scale[c] + o.l2*x[c]
		f += 0.5 * o.l2 * x[c] * x[c]
	}
	g[p] = sd
	copy(o.lastX, x)
	o.lastF = f
	o.valid = true
}

// rows accumulates the loss and the raw gradient sums over rows [lo, hi).
func (o *logObjective) rows(b0 float64, gn, gc []float64, lo, hi int) (f, sd float64) {
	clear(gn)
	clear(gc)
	d, dc := o.d, len(o.catF)
	numF, aNum, fill, a := o.numF, o.aNum, o.fill, o.a
	gn = gn[:len(numF)]
	aNum = aNum[:len(numF)]
	fill = fill[:len(numF)]
	for i := lo; i < hi; i++ {
		row := o.x[i*d : (i+1)*d]
		cr := o.cats[i*dc : (i+1)*dc]
		s := b0
		for k, j := range numF {
			v := row[j]
			if v != v {
				v = fill[k]
			}
			s += aNum[k] * v
		}
		for _, c := range cr {
			if c >= 0 {
				s += a[c]
			}
		}
		// loss = log(1+e^s) - y*s, stable
		var loss, pr float64
		if s > 0 {
			e := math.Exp(-s)
			loss = s + math.Log1p(e)
			pr = 1 / (1 + e)
		} else {
			e := math.Exp(s)
			loss = math.Log1p(e)
			pr = e / (1 + e)
		}
		y := o.y[i]
		loss -= y * s
		dd := pr - y
		if o.w != nil {
			loss *= o.w[i]
			dd *= o.w[i]
		}
		f += loss
		sd += dd
		for k, j := range numF {
			v := row[j]
			if v != v {
				v = fill[k]
			}
			gn[k] += dd * v
		}
		for _, c := range cr {
			if c >= 0 {
				gc[c] += dd
			}
		}
	}
	return f, sd
}

func (o *logObjective) eval(x []float64) float64 {
	if o.ctx.Err() != nil {
		return math.NaN()
	}
	o.compute(x)
	return o.lastF
}

func (o *logObjective) grad(g, x []float64) {
	o.compute(x)
	copy(g, o.lastG)
}
