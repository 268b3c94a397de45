package training

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/nudgehq/nudge/model"
)

// GBDTOptions configures histogram gradient-boosted trees for binary log loss. Zero values
// take the documented defaults.
type GBDTOptions struct {
	Trees        int     // boosting rounds, at most (0 = 200)
	LearningRate float64 // shrinkage (0 = 0.1)
	MaxDepth     int     // depth of each tree (0 = 6)
	MaxLeaves    int     // leaves per tree, grown best-first (0 = 2^MaxDepth, i.e. depth-wise)
	MinLeaf      int     // minimum rows in a leaf (0 = 20; 1 skips row counting, which is faster)
	MinHessian   float64 // minimum hessian sum in a leaf (0 = 1e-3)
	L2           float64 // L2 penalty on leaf values (0 = 1; negative = none)
	Bins         int     // value bins per feature, at most 255 (0 = 255); NaN has its own bin
	// EarlyStop stops after this many rounds without improving the validation log loss and keeps
	// the best round (0 = off). The validation set is Fit's valid, or when that is nil a
	// seeded random ValidFraction of train (0 = 0.1).
	EarlyStop     int
	ValidFraction float64
	Subsample     float64 // fraction of rows per tree (0 or 1 = all)
	Seed          uint64  // seeds subsampling and the internal validation split
	Workers       int     // goroutines for histograms (0 = min(2, GOMAXPROCS))
	// Progress, when set, is called after every round with the training and validation log
	// loss (NaN when there is no validation set).
	Progress func(round int, trainLoss, validLoss float64) `json:"-"`
}

// GBDT fits model.Ensemble: quantile-binned features (categoricals as ordinal codes),
// gradient and hessian histograms built in parallel across features, the histogram
// subtraction trick (the larger child is parent minus the smaller), L2-regularised leaves.
type GBDT struct{ opt GBDTOptions }

// NewGBDT returns a gradient-boosted trees learner.
func NewGBDT(opt GBDTOptions) *GBDT {
	if opt.Trees <= 0 {
		opt.Trees = 200
	}
	if opt.LearningRate <= 0 {
		opt.LearningRate = 0.1
	}
	if opt.MaxDepth <= 0 {
		opt.MaxDepth = 6
	}
	if opt.MaxLeaves <= 0 {
		opt.MaxLeaves = 1 << min(opt.MaxDepth, 16)
	}
	if opt.MinLeaf <= 0 {
		opt.MinLeaf = 20
	}
	if opt.MinHessian <= 0 {
		opt.MinHessian = 1e-3
	}
	if opt.L2 == 0 {
		opt.L2 = 1
	} else if opt.L2 < 0 {
		opt.L2 = 0
	}
	if opt.Bins <= 0 || opt.Bins > 255 {
		opt.Bins = 255
	}
	if opt.ValidFraction <= 0 || opt.ValidFraction >= 1 {
		opt.ValidFraction = 0.1
	}
	if opt.Subsample <= 0 || opt.Subsample > 1 {
		opt.Subsample = 1
	}
	if opt.Workers <= 0 {
		opt.Workers = min(2, runtime.GOMAXPROCS(0))
	}
	return &GBDT{opt: opt}
}

// Name is "gbdt".
func (b *GBDT) Name() string { return "gbdt" }

// Options returns the effective options.
func (b *GBDT) Options() GBDTOptions { return b.opt }

const nbins = 256 // histogram slots per feature: slot 0 is NaN, 1..255 values

// binner maps raw values to bins: NaN to 0, x to 1 + (number of cuts < x), so bin k holds
// cuts[k-2] < x <= cuts[k-1].
type binner struct{ cuts [][]float64 }

func newBinner(ds *Dataset, maxBins int, rng *rand.Rand) *binner {
	n, d := ds.N(), ds.D()
	const sampleMax = 200_000
	idx := make([]int, 0, min(n, sampleMax))
	if n <= sampleMax {
		for i := 0; i < n; i++ {
			idx = append(idx, i)
		}
	} else {
		for _, i := range rng.Perm(n)[:sampleMax] {
			idx = append(idx, i)
		}
	}
	b := &binner{cuts: make([][]float64, d)}
	vals := make([]float64, 0, len(idx))
	for j := 0; j < d; j++ {
		vals = vals[:0]
		for _, i := range idx {
			if v := ds.X[i*d+j]; !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
		slices.Sort(vals)
		distinct := slices.Compact(slices.Clone(vals))
		var cuts []float64
		if len(distinct) <= maxBins {
			if len(distinct) > 1 {
				cuts = distinct[:len(distinct)-1]
			}
		} else {
			for k := 1; k < maxBins; k++ {
				v := vals[k*len(vals)/maxBins]
				if len(cuts) == 0 || v > cuts[len(cuts)-1] {
					cuts = append(cuts, v)
				}
			}
			if len(cuts) > 0 && cuts[len(cuts)-1] == vals[len(vals)-1] {
				cuts = cuts[:len(cuts)-1]
			}
		}
		b.cuts[j] = cuts
	}
	return b
}

func (b *binner) bin(j int, v float64) uint8 {
	if math.IsNaN(v) {
		return 0
	}
	c := b.cuts[j]
	lo, hi := 0, len(c)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return uint8(lo + 1)
}

// binAll returns the row-major binned matrix.
func (b *binner) binAll(ds *Dataset, workers int) []uint8 {
	n, d := ds.N(), ds.D()
	out := make([]uint8, n*d)
	parallelRange(n, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := 0; j < d; j++ {
				out[i*d+j] = b.bin(j, ds.X[i*d+j])
			}
		}
	})
	return out
}

func parallelRange(n, workers int, fn func(lo, hi int)) {
	if workers <= 1 || n < 4096 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}

// treeNode is a node under construction.
type treeNode struct {
	feature int32
	binThr  uint8
	thr     float64
	left    int32
	right   int32
	value   float64
	lo, hi  int // range of the grower's index array holding the node's rows
	g, h    float64
	depth   int
}

type candidate struct {
	node    int32
	hist    []float64
	gain    float64
	feature int
	bin     int
}

type candHeap []*candidate

func (c candHeap) Len() int           { return len(c) }
func (c candHeap) Less(i, j int) bool { return c[i].gain > c[j].gain }
func (c candHeap) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *candHeap) Push(x any)        { *c = append(*c, x.(*candidate)) }
func (c *candHeap) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// grower builds one tree at a time over a binned matrix.
type grower struct {
	opt     GBDTOptions
	n, d    int
	bins    []uint8
	nb      []int     // value bins per feature (cuts+1)
	gh      []float64 // gradient and hessian of row i at 2i, 2i+1
	idx     []int32   // row indices, partitioned in place per node
	tmp     []int32
	pool    [][]float64
	nodes   []treeNode
	gain    []float64 // per feature, accumulated
	workers int
	counts  bool // histograms count rows (needed only when MinLeaf > 1)
}

func (gr *grower) getHist() []float64 {
	if k := len(gr.pool); k > 0 {
		h := gr.pool[k-1]
		gr.pool = gr.pool[:k-1]
		clear(h)
		return h
	}
	return make([]float64, gr.d*nbins*3)
}

func (gr *grower) putHist(h []float64) { gr.pool = append(gr.pool, h) }

// partition reorders rows stably so those whose bin of feature f is <= b come first, and
// returns their count and gradient and hessian sums. Large nodes are split across workers:
// each partitions its chunk into scratch space (lefts forward, rights backward), then the
// chunks are copied into place.
func (gr *grower) partition(rows []int32, f int, b uint8) (int, float64, float64) {
	m := len(rows)
	if cap(gr.tmp) < m {
		gr.tmp = make([]int32, 0, m)
	}
	tmp := gr.tmp[:m]
	w := gr.workers
	if w <= 1 || m < 1<<15 {
		w = 1
	}
	type part struct {
		lo, hi, nl int
		gl, hl     float64
	}
	parts := make([]part, w)
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		lo, hi := k*m/w, (k+1)*m/w
		run := func() {
			bins, gh, d := gr.bins, gr.gh, gr.d
			nl, nr := lo, hi
			var gl, hl float64
			for _, i := range rows[lo:hi] {
				if bins[int(i)*d+f] <= b {
					tmp[nl] = i
					nl++
					gl += gh[2*i]
					hl += gh[2*i+1]
				} else {
					nr--
					tmp[nr] = i
				}
			}
			parts[k] = part{lo, hi, nl - lo, gl, hl}
		}
		if w == 1 {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	l := 0
	var gl, hl float64
	for _, p := range parts {
		l += p.nl
		gl += p.gl
		hl += p.hl
	}
	leftAt, rightAt := 0, l
	for _, p := range parts {
		la, ra := leftAt, rightAt
		leftAt += p.nl
		rightAt += p.hi - p.lo - p.nl
		run := func() {
			copy(rows[la:], tmp[p.lo:p.lo+p.nl])
			// rights were written backwards from hi
			r := rows[ra : ra+p.hi-p.lo-p.nl]
			src := tmp[p.lo+p.nl : p.hi]
			for j := range r {
				r[j] = src[len(src)-1-j]
			}
		}
		if w == 1 {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	return l, gl, hl
}

// build fills hist with sums of g, h and counts over rows, parallel across features.
func (gr *grower) build(hist []float64, rows []int32) {
	d := gr.d
	work := func(f0, f1 int) {
		bins, gh := gr.bins, gr.gh
		// one fixed-size array per feature: indexing it with a uint8 bin needs no bounds check
		hs := make([]*[nbins * 3]float64, f1-f0)
		for j := range hs {
			hs[j] = (*[nbins * 3]float64)(hist[(f0+j)*nbins*3 : (f0+j+1)*nbins*3])
		}
		for _, i := range rows {
			p := gh[2*int(i) : 2*int(i)+2 : 2*int(i)+2]
			gi, hi := p[0], p[1]
			r := bins[int(i)*d+f0 : int(i)*d+f1]
			hs := hs[:len(r)]
			if gr.counts {
				for j, b := range r {
					h := hs[j]
					h[int(b)*3] += gi
					h[int(b)*3+1] += hi
					h[int(b)*3+2]++
				}
				continue
			}
			for j, b := range r {
				h := hs[j]
				h[int(b)*3] += gi
				h[int(b)*3+1] += hi
			}
		}
	}
	w := gr.workers
	if w <= 1 || len(rows) < 2048 || d < 2 {
		work(0, d)
		return
	}
	w = min(w, d)
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		f0, f1 := k*d/w, (k+1)*d/w
		wg.Add(1)
		go func() { defer wg.Done(); work(f0, f1) }()
	}
	wg.Wait()
}

// best finds the best split of a node from its histogram.
func (gr *grower) best(hist []float64, G, H float64, n int) (gain float64, feat, bin int) {
	lam := gr.opt.L2
	parent := G * G / (H + lam)
	minLeaf := float64(gr.opt.MinLeaf)
	minH := gr.opt.MinHessian
	feat = -1
	for f := 0; f < gr.d; f++ {
		hs := hist[f*nbins*3 : (f+1)*nbins*3]
		gl, hl, nl := hs[0], hs[1], hs[2]
		for k := 1; k < gr.nb[f]; k++ {
			gl += hs[k*3]
			hl += hs[k*3+1]
			nl += hs[k*3+2]
			if hl < minH {
				continue
			}
			if gr.counts {
				if nl < minLeaf {
					continue
				}
				if float64(n)-nl < minLeaf {
					break
				}
			}
			hr := H - hl
			if hr < minH {
				break
			}
			gr := G - gl
			s := gl*gl/(hl+lam) + gr*gr/(hr+lam) - parent
			if s > gain {
				gain, feat, bin = s, f, k
			}
		}
	}
	return gain, feat, bin
}

// grow builds one tree over rows idx[0:m] (the grower's index array) and returns its nodes.
func (gr *grower) grow(m int, cuts [][]float64) []treeNode {
	gr.nodes = gr.nodes[:0]
	var G, H float64
	for _, i := range gr.idx[:m] {
		G += gr.gh[2*i]
		H += gr.gh[2*i+1]
	}
	gr.nodes = append(gr.nodes, treeNode{feature: -1, lo: 0, hi: m, g: G, h: H})
	var hp candHeap
	consider := func(id int32, hist []float64) {
		nd := &gr.nodes[id]
		if nd.depth >= gr.opt.MaxDepth || nd.hi-nd.lo < 2*gr.opt.MinLeaf {
			gr.putHist(hist)
			return
		}
		gain, f, b := gr.best(hist, nd.g, nd.h, nd.hi-nd.lo)
		if f < 0 || gain <= 1e-12 {
			gr.putHist(hist)
			return
		}
		heap.Push(&hp, &candidate{node: id, hist: hist, gain: gain, feature: f, bin: b})
	}
	root := gr.getHist()
	gr.build(root, gr.idx[:m])
	consider(0, root)
	leaves := 1
	for hp.Len() > 0 && leaves < gr.opt.MaxLeaves {
		c := heap.Pop(&hp).(*candidate)
		nd := gr.nodes[c.node]
		// partition rows: bin <= c.bin go left, stable
		l, gl, hl := gr.partition(gr.idx[nd.lo:nd.hi], c.feature, uint8(c.bin))
		li, ri := int32(len(gr.nodes)), int32(len(gr.nodes)+1)
		gr.nodes = append(gr.nodes,
			treeNode{feature: -1, lo: nd.lo, hi: nd.lo + l, g: gl, h: hl, depth: nd.depth + 1},
			treeNode{feature: -1, lo: nd.lo + l, hi: nd.hi, g: nd.g - gl, h: nd.h - hl, depth: nd.depth + 1})
		p := &gr.nodes[c.node]
		p.feature, p.binThr, p.left, p.right = int32(c.feature), uint8(c.bin), li, ri
		p.thr = cuts[c.feature][c.bin-1]
		gr.gain[c.feature] += c.gain
		leaves++
		// Children that cannot split need no histogram. Otherwise the smaller child gets a
		// fresh one and the larger one is parent minus smaller.
		if nd.depth+1 >= gr.opt.MaxDepth || leaves >= gr.opt.MaxLeaves {
			gr.putHist(c.hist)
			continue
		}
		small, large := li, ri
		if l > nd.hi-nd.lo-l {
			small, large = ri, li
		}
		sh := gr.getHist()
		sn := gr.nodes[small]
		gr.build(sh, gr.idx[sn.lo:sn.hi])
		lh := c.hist
		for k := range lh {
			lh[k] -= sh[k]
		}
		consider(small, sh)
		consider(large, lh)
	}
	for _, c := range hp {
		gr.putHist(c.hist)
	}
	lam, lr := gr.opt.L2, gr.opt.LearningRate
	for k := range gr.nodes {
		nd := &gr.nodes[k]
		if nd.feature < 0 {
			nd.value = -nd.g / (nd.h + lam) * lr
		}
	}
	return gr.nodes
}

// Fit boosts trees on train, early-stopping on valid (or an internal split) when asked.
func (b *GBDT) Fit(ctx context.Context, train, valid *Dataset) (model.Binary, error) {
	if err := checkDataset(train); err != nil {
		return nil, fmt.Errorf("training: gbdt: %w", err)
	}
	opt := b.opt
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	if opt.EarlyStop > 0 && valid == nil {
		perm := rng.Perm(train.N())
		nv := int(float64(train.N()) * opt.ValidFraction)
		if nv < 1 || nv >= train.N() {
			return nil, fmt.Errorf("training: gbdt: %d rows too few for an internal validation split", train.N())
		}
		vi, ti := perm[:nv], perm[nv:]
		slices.Sort(vi)
		slices.Sort(ti)
		valid, train = train.Subset(vi), train.Subset(ti)
		if err := checkDataset(train); err != nil {
			return nil, fmt.Errorf("training: gbdt: after validation split: %w", err)
		}
	}
	if valid != nil && valid.D() != train.D() {
		return nil, fmt.Errorf("training: gbdt: valid has %d features, train %d", valid.D(), train.D())
	}
	n, d := train.N(), train.D()
	bn := newBinner(train, opt.Bins, rng)
	gr := &grower{opt: opt, n: n, d: d, bins: bn.binAll(train, opt.Workers), workers: opt.Workers,
		gh: make([]float64, 2*n), idx: make([]int32, n), tmp: make([]int32, 0, n),
		gain: make([]float64, d), nb: make([]int, d), counts: opt.MinLeaf > 1}
	for j := range gr.nb {
		gr.nb[j] = len(bn.cuts[j]) + 1
	}
	// base score: weighted mean log-odds
	var sw, sy float64
	for i := 0; i < n; i++ {
		w := train.Weight(i)
		sw += w
		sy += w * train.Y[i]
	}
	base := math.Log(sy / (sw - sy))
	F := make([]float64, n)
	for i := range F {
		F[i] = base
	}
	var Fv []float64
	if valid != nil {
		Fv = make([]float64, valid.N())
		for i := range Fv {
			Fv[i] = base
		}
	}
	ens := model.Ensemble{Features: slices.Clone(train.Names), Base: base}
	if train.Categorical != nil {
		ens.Categorical = slices.Clone(train.Categorical)
	}
	bestLoss, bestRound := math.Inf(1), 0
	var bestGain []float64
	for round := 0; round < opt.Trees; round++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("training: gbdt: %w", err)
		}
		trainLoss := 0.0
		parallelRange(n, opt.Workers, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				p := model.Sigmoid(F[i])
				w := train.Weight(i)
				gr.gh[2*i] = w * (p - train.Y[i])
				gr.gh[2*i+1] = max(w*p*(1-p), 1e-16)
			}
		})
		m := 0
		if opt.Subsample < 1 {
			for i := 0; i < n; i++ {
				if rng.Float64() < opt.Subsample {
					gr.idx[m] = int32(i)
					m++
				}
			}
		} else {
			parallelRange(n, opt.Workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					gr.idx[i] = int32(i)
				}
			})
			m = n
		}
		nodes := gr.grow(m, bn.cuts)
		// update training margins
		if opt.Subsample < 1 {
			parallelRange(n, opt.Workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					k := 0
					for nodes[k].feature >= 0 {
						if gr.bins[i*d+int(nodes[k].feature)] <= nodes[k].binThr {
							k = int(nodes[k].left)
						} else {
							k = int(nodes[k].right)
						}
					}
					F[i] += nodes[k].value
				}
			})
		} else {
			// leaves own disjoint ranges of idx: split the positions across workers
			parallelRange(m, opt.Workers, func(lo, hi int) {
				for _, nd := range nodes {
					if nd.feature >= 0 || nd.hi <= lo || nd.lo >= hi {
						continue
					}
					for _, i := range gr.idx[max(nd.lo, lo):min(nd.hi, hi)] {
						F[i] += nd.value
					}
				}
			})
		}
		// append the flattened tree
		off := int32(len(ens.Feature))
		ens.Roots = append(ens.Roots, off)
		for _, nd := range nodes {
			ens.Feature = append(ens.Feature, nd.feature)
			ens.Threshold = append(ens.Threshold, nd.thr)
			if nd.feature >= 0 {
				ens.Left = append(ens.Left, nd.left+off)
				ens.Right = append(ens.Right, nd.right+off)
			} else {
				ens.Left = append(ens.Left, 0)
				ens.Right = append(ens.Right, 0)
			}
			ens.Value = append(ens.Value, nd.value)
		}
		if opt.Progress != nil {
			trainLoss = weightedLogLoss(F, train.Y, train.W, true)
		}
		validLoss := math.NaN()
		if valid != nil {
			vd := valid.D()
			for i := range Fv {
				x := valid.X[i*vd : (i+1)*vd]
				k := 0
				for nodes[k].feature >= 0 {
					if x[nodes[k].feature] > nodes[k].thr {
						k = int(nodes[k].right)
					} else {
						k = int(nodes[k].left)
					}
				}
				Fv[i] += nodes[k].value
			}
			validLoss = weightedLogLoss(Fv, valid.Y, valid.W, true)
		}
		if opt.Progress != nil {
			opt.Progress(round+1, trainLoss, validLoss)
		}
		if opt.EarlyStop > 0 && valid != nil {
			if validLoss < bestLoss-1e-12 {
				bestLoss, bestRound = validLoss, round+1
				bestGain = slices.Clone(gr.gain)
			} else if round+1-bestRound >= opt.EarlyStop {
				break
			}
		}
	}
	if opt.EarlyStop > 0 && valid != nil && bestRound > 0 && bestRound < len(ens.Roots) {
		cut := int(ens.Roots[bestRound])
		ens.Roots = ens.Roots[:bestRound]
		ens.Feature, ens.Threshold = ens.Feature[:cut], ens.Threshold[:cut]
		ens.Left, ens.Right, ens.Value = ens.Left[:cut], ens.Right[:cut], ens.Value[:cut]
		gr.gain = bestGain
	}
	ens.Gain = gr.gain
	out, err := model.NewEnsemble(ens)
	if err != nil {
		return nil, fmt.Errorf("training: gbdt: %w", err)
	}
	return out, nil
}

// weightedLogLoss is the weighted mean log loss of margins (logit=true) or probabilities.
func weightedLogLoss(s, y, w []float64, logit bool) float64 {
	var sum, sw float64
	for i, v := range s {
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		var l float64
		if logit {
			// log(1+e^v) - y v
			if v > 0 {
				l = v + math.Log1p(math.Exp(-v))
			} else {
				l = math.Log1p(math.Exp(v))
			}
			l -= y[i] * v
		} else {
			p := min(max(v, 1e-15), 1-1e-15)
			l = -(y[i]*math.Log(p) + (1-y[i])*math.Log(1-p))
		}
		sum += wi * l
		sw += wi
	}
	return sum / sw
}
