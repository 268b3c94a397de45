package uplift

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMetricsHandComputed(t *testing.T) {
	// Sorted by score: T1 C0 T1 C1 T0 C1 (see the table in the comments below).
	// k:      1    2    3    4    5     6
	// Qini:   1    1    2    1    0.5   0       (Qini(n) = 0, so the random line is 0)
	// U(k):   0    2    3    2    5/6   0
	// Qini coefficient = (1+1+2+1+0.5+0)/6/3 = 5.5/18; AUUC = (0+2+3+2+5/6+0)/36.
	// uplift@10%: top ceil(0.6)=1 row has no control -> NaN; @20%, @30%: top 2 rows: 1 - 0 = 1.
	score := []float64{0.5, 0.9, 0.4, 0.8, 0.6, 0.7} // shuffled input order
	treated := []bool{true, true, false, false, false, true}
	y := []float64{0, 1, 1, 0, 1, 1}
	ev, err := Evaluate("a", score, treated, y, nil, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want float64
	}{
		{"qini", ev.Qini, 5.5 / 18},
		{"auuc", ev.AUUC, (7 + 5.0/6) / 36},
		{"ate", ev.ATE, 0},
		{"auuc random", ev.AUUCRandom, 0},
		{"uplift@20", ev.UpliftAt20, 1},
		{"uplift@30", ev.UpliftAt30, 1},
		{"n treated", ev.NTreated, 3},
		{"n control", ev.NControl, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !near(tc.got, tc.want, 1e-12) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if !math.IsNaN(ev.UpliftAt10) {
		t.Errorf("uplift@10 = %v, want NaN (no control row in the top 1)", ev.UpliftAt10)
	}
	if len(ev.Curve) != 7 || ev.Curve[6].Fraction != 1 || ev.Curve[3].Qini != 2 || ev.Curve[4].Uplift != 2 {
		t.Errorf("curve %+v", ev.Curve)
	}
	// Weights: doubling every weight changes no normalised metric.
	w := []float64{2, 2, 2, 2, 2, 2}
	ev2, err := Evaluate("a", score, treated, y, w, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(ev2.Qini, ev.Qini, 1e-12) || !near(ev2.AUUC, ev.AUUC, 1e-12) {
		t.Errorf("weighted: qini %v auuc %v", ev2.Qini, ev2.AUUC)
	}
}

// synthetic randomised experiment with known per-row uplift tau.
func experiment(n int, seed uint64) (tau []float64, treated []bool, y []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n; i++ {
		x := r.Float64()
		p0 := 0.2 + 0.2*x
		tu := 0.4*x - 0.1
		tr := r.IntN(2) == 1
		p := p0
		if tr {
			p += tu
		}
		yy := 0.0
		if r.Float64() < p {
			yy = 1
		}
		tau = append(tau, tu)
		treated = append(treated, tr)
		y = append(y, yy)
	}
	return
}

func TestPerfectBeatsRandomRanking(t *testing.T) {
	tau, treated, y := experiment(20000, 3)
	r := rand.New(rand.NewPCG(4, 4))
	random := make([]float64, len(tau))
	for i := range random {
		random[i] = r.Float64()
	}
	opt := EvalOptions{Bootstrap: 200, Seed: 1}
	perfect, err := Evaluate("a", tau, treated, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	rnd, err := Evaluate("a", random, treated, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !(perfect.Lo.Qini > 0 && perfect.Lo.Qini > rnd.Hi.Qini) {
		t.Errorf("perfect qini %v [%v,%v], random %v [%v,%v]", perfect.Qini, perfect.Lo.Qini, perfect.Hi.Qini, rnd.Qini, rnd.Lo.Qini, rnd.Hi.Qini)
	}
	if !(rnd.Lo.Qini < 0 && rnd.Hi.Qini > 0) {
		t.Errorf("random ranking's qini CI [%v,%v] excludes 0", rnd.Lo.Qini, rnd.Hi.Qini)
	}
	if !(perfect.AUUC > perfect.AUUCRandom+0.02) || math.Abs(rnd.AUUC-rnd.AUUCRandom) > 0.02 {
		t.Errorf("auuc perfect %v (random line %v), random %v (%v)", perfect.AUUC, perfect.AUUCRandom, rnd.AUUC, rnd.AUUCRandom)
	}
	// true uplift in the top 10% is 0.4*0.95-0.1 = 0.28 on average
	if !(perfect.Lo.UpliftAt10 < 0.28 && perfect.Hi.UpliftAt10 > 0.28) || perfect.UpliftAt10 < perfect.UpliftAt30 {
		t.Errorf("uplift@10 %v [%v,%v], @30 %v", perfect.UpliftAt10, perfect.Lo.UpliftAt10, perfect.Hi.UpliftAt10, perfect.UpliftAt30)
	}
}

func TestBootstrapCI(t *testing.T) {
	width := map[int]float64{}
	for _, n := range []int{1000, 16000} {
		tau, treated, y := experiment(n, uint64(n))
		ev, err := Evaluate("a", tau, treated, y, nil, EvalOptions{Bootstrap: 300, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		lo, hi, pt := ev.Lo.fields(), ev.Hi.fields(), ev.Metrics.fields()
		for j := range pt {
			if !(*lo[j] <= *pt[j] && *pt[j] <= *hi[j]) {
				t.Errorf("n=%d metric %d: %v outside [%v, %v]", n, j, *pt[j], *lo[j], *hi[j])
			}
		}
		width[n] = ev.Hi.Qini - ev.Lo.Qini
		// same seed, same interval
		ev2, _ := Evaluate("a", tau, treated, y, nil, EvalOptions{Bootstrap: 300, Seed: 7})
		if ev2.Lo != ev.Lo || ev2.Hi != ev.Hi {
			t.Errorf("bootstrap not deterministic per seed")
		}
	}
	// 16x the rows: the width should shrink about 4x; require at least 2.5x
	if !(width[16000]*2.5 < width[1000]) {
		t.Errorf("qini CI width %v at n=1000, %v at n=16000", width[1000], width[16000])
	}
}

func TestEvaluateErrors(t *testing.T) {
	if _, err := Evaluate("a", []float64{1, 2}, []bool{true, true}, []float64{0, 1}, nil, EvalOptions{}); err == nil {
		t.Error("no control rows accepted")
	}
	if _, err := Evaluate("a", []float64{1}, []bool{true, false}, []float64{0, 1}, nil, EvalOptions{}); err == nil {
		t.Error("length mismatch accepted")
	}
}
