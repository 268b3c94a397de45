package model

import (
	"fmt"
	"math"
)

// Ensemble is a fitted tree ensemble for binary outcomes (gradient-boosted trees): the
// probability is Sigmoid(Base + sum of the leaf values each tree sends the row to).
//
// Trees are flattened into parallel arrays indexed by node: an internal node sends x to Left
// when x[Feature] <= Threshold and to Right otherwise (NaN goes left); a leaf has Feature -1
// and carries Value. Roots[t] is tree t's root node. Scoring walks the arrays and allocates
// nothing. Categorical features are ordinal codes compared like numbers.
type Ensemble struct {
	Features    []string
	Categorical []bool // per feature; nil = all numeric
	Base        float64
	Roots       []int32
	Feature     []int32
	Threshold   []float64
	Left, Right []int32
	Value       []float64
	Gain        []float64 // per feature: total split gain (importance); may be nil

	// packed is the scoring layout (derived, not serialised): one 16-byte node per entry, the
	// two children of a node adjacent (right = left+1), so a step is one load and no branch
	// on the comparison. A leaf is its own child: it tests the extra input slot len(Features),
	// which the walk sets to -Inf, so a walk that reached it stays there, and a tree can be
	// walked any number of steps at least its depth without a leaf test (see Margin).
	packed []packedNode
	roots  []int32
	depths []int32 // per group of eight trees (in order; the last may be short): the deepest's depth
}

type packedNode struct {
	thr  float64 // threshold; for a leaf, its value
	feat int32   // len(Features) for a leaf
	kid  int32   // left child; the right one is kid+1; a leaf's own index
}

// maxFlatFeatures bounds the input rows the fixed-depth walk copies to the stack; wider rows
// are walked with a leaf test at each step.
const maxFlatFeatures = 255

// NewEnsemble checks the arrays: every child index is in range and points forward, so a walk
// always ends at a leaf.
func NewEnsemble(e Ensemble) (*Ensemble, error) {
	n := len(e.Feature)
	if len(e.Threshold) != n || len(e.Left) != n || len(e.Right) != n || len(e.Value) != n {
		return nil, fmt.Errorf("model: ensemble: node arrays differ in length")
	}
	d := len(e.Features)
	if e.Categorical != nil && len(e.Categorical) != d {
		return nil, fmt.Errorf("model: ensemble: %d categorical flags for %d features", len(e.Categorical), d)
	}
	if e.Gain != nil && len(e.Gain) != d {
		return nil, fmt.Errorf("model: ensemble: %d gains for %d features", len(e.Gain), d)
	}
	for _, r := range e.Roots {
		if r < 0 || int(r) >= n {
			return nil, fmt.Errorf("model: ensemble: root %d out of range", r)
		}
	}
	for i := 0; i < n; i++ {
		f := e.Feature[i]
		if f < 0 {
			if math.IsNaN(e.Value[i]) || math.IsInf(e.Value[i], 0) {
				return nil, fmt.Errorf("model: ensemble: node %d: leaf value %v", i, e.Value[i])
			}
			continue
		}
		if t := e.Threshold[i]; math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("model: ensemble: node %d: threshold %v", i, t)
		}
		if int(f) >= d {
			return nil, fmt.Errorf("model: ensemble: node %d: feature %d of %d", i, f, d)
		}
		if l, r := e.Left[i], e.Right[i]; l <= int32(i) || r <= int32(i) || int(l) >= n || int(r) >= n {
			return nil, fmt.Errorf("model: ensemble: node %d: children %d,%d", i, l, r)
		}
	}
	m := e
	m.pack()
	return &m, nil
}

// pack lays each tree out breadth-first with siblings adjacent.
func (e *Ensemble) pack() {
	e.packed = make([]packedNode, 0, len(e.Feature))
	e.roots = make([]int32, len(e.Roots))
	e.depths = make([]int32, (len(e.Roots)+7)/8)
	leaf := int32(len(e.Features))
	var queue [][3]int32 // (old node, new slot, depth)
	for t, r := range e.Roots {
		e.roots[t] = int32(len(e.packed))
		e.packed = append(e.packed, packedNode{})
		queue = append(queue[:0], [3]int32{r, e.roots[t], 0})
		for len(queue) > 0 {
			old, slot, depth := queue[0][0], queue[0][1], queue[0][2]
			queue = queue[1:]
			if e.Feature[old] < 0 {
				e.packed[slot] = packedNode{thr: e.Value[old], feat: leaf, kid: slot}
				e.depths[t/8] = max(e.depths[t/8], depth)
				continue
			}
			kid := int32(len(e.packed))
			e.packed = append(e.packed, packedNode{}, packedNode{})
			thr := e.Threshold[old]
			if thr == 0 {
				thr = 0 // -0 would send +0 right in Margin's sign test
			}
			e.packed[slot] = packedNode{thr: thr, feat: e.Feature[old], kid: kid}
			queue = append(queue, [3]int32{e.Left[old], kid, depth + 1}, [3]int32{e.Right[old], kid + 1, depth + 1})
		}
	}
}

// next returns the child of internal node nd that x goes to: right iff x > thr, tested as the
// sign of thr-x without a branch that random data would mispredict (thr-x is never -0 for
// x != thr, and thresholds are never -0 or infinite); NaN goes left.
func next(nd packedNode, x []float64) int32 {
	v := x[nd.feat]
	k := nd.kid
	if v == v {
		k += int32(math.Float64bits(nd.thr-v) >> 63)
	}
	return k
}

// step is next for the fixed-depth walk, whose input has no NaN (see Margin) and ends with
// -Inf for the leaves' self-loops: thr - (-Inf) = +Inf keeps a leaf where it is.
func step(nd packedNode, x []float64) int32 {
	return nd.kid + int32(math.Float64bits(nd.thr-x[nd.feat])>>63)
}

// NumFeatures is the length of the input row.
func (e *Ensemble) NumFeatures() int { return len(e.Features) }

// NumTrees is the number of trees.
func (e *Ensemble) NumTrees() int { return len(e.Roots) }

// Margin returns Base plus the sum of the trees' leaf values (the log-odds).
func (e *Ensemble) Margin(x []float64) (float64, error) {
	if len(x) != len(e.Features) {
		return 0, fmt.Errorf("%w: ensemble has %d, got %d", ErrFeatureCount, len(e.Features), len(x))
	}
	if len(x) > maxFlatFeatures {
		return e.marginLeafTest(x), nil
	}
	// The fixed-depth walk: NaN is replaced by -Inf, which every split sends left as it does
	// NaN (thresholds are finite), and the leaf slot is -Inf, so each group of eight trees
	// takes as many steps as its deepest tree needs, and the walk has no data-dependent branch
	// (a leaf test mispredicts whenever trees end at different depths, and a NaN test whenever
	// sessions differ in which features are missing).
	var xb [maxFlatFeatures + 1]float64
	xx := xb[:len(x)+1]
	for j, v := range x {
		if v != v {
			v = math.Inf(-1)
		}
		xx[j] = v
	}
	xx[len(x)] = math.Inf(-1)
	nodes := e.packed
	roots := e.roots
	depths := e.depths
	s := e.Base
	// Eight trees are walked together so their memory loads overlap (a node is usually an L2
	// hit: the pipeline's propensity model is 200 KB of nodes); the sum is still taken in tree
	// order, so the result is the same as walking them one by one.
	t := 0
	for ; t+8 <= len(roots); t += 8 {
		r := roots[t : t+8]
		a, b, c, d := nodes[r[0]], nodes[r[1]], nodes[r[2]], nodes[r[3]]
		a2, b2, c2, d2 := nodes[r[4]], nodes[r[5]], nodes[r[6]], nodes[r[7]]
		for range depths[t/8] {
			a = nodes[step(a, xx)]
			b = nodes[step(b, xx)]
			c = nodes[step(c, xx)]
			d = nodes[step(d, xx)]
			a2 = nodes[step(a2, xx)]
			b2 = nodes[step(b2, xx)]
			c2 = nodes[step(c2, xx)]
			d2 = nodes[step(d2, xx)]
		}
		s += a.thr
		s += b.thr
		s += c.thr
		s += d.thr
		s += a2.thr
		s += b2.thr
		s += c2.thr
		s += d2.thr
	}
	for ; t < len(roots); t++ {
		nd := nodes[roots[t]]
		for range depths[t/8] {
			nd = nodes[step(nd, xx)]
		}
		s += nd.thr
	}
	return s, nil
}

// marginLeafTest is the walk for rows too wide to copy: a leaf test at each step.
func (e *Ensemble) marginLeafTest(x []float64) float64 {
	nodes := e.packed
	leaf := int32(len(x))
	s := e.Base
	for _, r := range e.roots {
		nd := nodes[r]
		for nd.feat != leaf {
			nd = nodes[next(nd, x)]
		}
		s += nd.thr
	}
	return s
}

// Score returns the probability of the positive outcome.
func (e *Ensemble) Score(x []float64) (float64, error) {
	m, err := e.Margin(x)
	if err != nil {
		return 0, err
	}
	return Sigmoid(m), nil
}
