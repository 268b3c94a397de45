package report

import "math"

// z95 is the standard normal quantile of 0.975.
const z95 = 1.959963984540054

// twoSidedP is the two-sided p-value of a standard normal statistic z.
func twoSidedP(z float64) float64 {
	if math.IsNaN(z) {
		return 1
	}
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// wilson is the Wilson score interval of a proportion p observed on n (possibly effective,
// non-integer) units.
func wilson(p, n float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	z2 := z95 * z95
	den := 1 + z2/n
	mid := (p + z2/(2*n)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return max(0, mid-half), min(1, mid+half)
}

// propSample is the outcomes of one group, clustered by visitor.
type propSample struct {
	n, x     float64               // units and successes
	clusters map[string][2]float64 // visitor -> (units, successes)
}

func newPropSample() *propSample { return &propSample{clusters: map[string][2]float64{}} }

func (s *propSample) add(cluster string, y bool) {
	c := s.clusters[cluster]
	c[0]++
	s.n++
	if y {
		c[1]++
		s.x++
	}
	s.clusters[cluster] = c
}

func (s *propSample) rate() float64 { return ratio(s.x, s.n) }

// deff is the design effect of the proportion: its cluster-robust (visitor) variance over the
// binomial variance, at least 1. Without a small-sample factor, so that singleton clusters
// give exactly 1 (Newcombe's interval unchanged for unclustered data).
//
//	V_cl  = Σ_c (x_c − p̂·m_c)² / n²,   V_bin = p̂(1−p̂)/n,   deff = max(1, V_cl/V_bin)
func (s *propSample) deff() float64 {
	C := float64(len(s.clusters))
	p := s.rate()
	vbin := p * (1 - p) / s.n
	if C < 2 || vbin <= 0 {
		return 1
	}
	ss := 0.0
	for _, c := range s.clusters {
		d := c[1] - p*c[0]
		ss += d * d
	}
	vcl := ss / (s.n * s.n)
	return max(1, vcl/vbin)
}

// newcombe is the difference p1 − p0 of two independent clustered proportions with the
// Newcombe hybrid score interval (MOVER with Wilson limits on design-effect-adjusted sample
// sizes, Zou & Donner 2004) and the two-sided p-value of the pooled score test with the same
// design effects.
func newcombe(t, c *propSample) (diff float64, ci Interval, p float64) {
	p1, p0 := t.rate(), c.rate()
	d1, d0 := t.deff(), c.deff()
	l1, u1 := wilson(p1, t.n/d1)
	l0, u0 := wilson(p0, c.n/d0)
	diff = p1 - p0
	ci = Interval{
		Low:   diff - math.Sqrt((p1-l1)*(p1-l1)+(u0-p0)*(u0-p0)),
		High:  diff + math.Sqrt((u1-p1)*(u1-p1)+(p0-l0)*(p0-l0)),
		Level: 0.95,
	}
	pool := ratio(t.x+c.x, t.n+c.n)
	se := math.Sqrt(pool * (1 - pool) * (d1/t.n + d0/c.n))
	p = 1
	if se > 0 {
		p = twoSidedP(diff / se)
	}
	return diff, ci, p
}

// ipwUnit is one logged decision of an arm's comparison.
type ipwUnit struct {
	cluster string
	treated bool    // A = the arm (else A = none)
	w       float64 // 1 / logged probability
	y       float64
}

// hajek is the difference of the Hájek (self-normalised inverse propensity weighted) means of
// Y under the arm and under none, with its cluster-robust sandwich variance:
//
//	μ̂_a = Σ_{A=a} w·Y / Σ_{A=a} w,   μ̂_0 = Σ_{A=0} w·Y / Σ_{A=0} w,   τ̂ = μ̂_a − μ̂_0
//	ψ_i = [A_i=a]·w_i·(Y_i−μ̂_a)/S_a − [A_i=0]·w_i·(Y_i−μ̂_0)/S_0
//	V̂(τ̂) = G/(G−1) · Σ_g (Σ_{i∈g} ψ_i)²      (g: visitors)
func hajek(units []ipwUnit) (mu1, mu0, diff, se float64) {
	var s1, s0, sy1, sy0 float64
	for _, u := range units {
		if u.treated {
			s1 += u.w
			sy1 += u.w * u.y
		} else {
			s0 += u.w
			sy0 += u.w * u.y
		}
	}
	mu1, mu0 = ratio(sy1, s1), ratio(sy0, s0)
	diff = mu1 - mu0
	if s1 == 0 || s0 == 0 {
		return mu1, mu0, diff, math.NaN()
	}
	psi := map[string]float64{}
	for _, u := range units {
		if u.treated {
			psi[u.cluster] += u.w * (u.y - mu1) / s1
		} else {
			psi[u.cluster] -= u.w * (u.y - mu0) / s0
		}
	}
	G := float64(len(psi))
	if G < 2 {
		return mu1, mu0, diff, math.NaN()
	}
	v := 0.0
	for _, p := range psi {
		v += p * p
	}
	return mu1, mu0, diff, math.Sqrt(G / (G - 1) * v)
}
