package model_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/model"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// testLogistic: x0 numeric, x1 categorical with 3 levels.
func testLogistic(t testing.TB) *model.Logistic {
	t.Helper()
	m, err := model.NewLogistic(model.Logistic{
		Features:    []string{"x0", "x1"},
		Categorical: []bool{false, true},
		Levels:      []int{0, 3},
		Mean:        []float64{2, 0.5, 0.3, 0.2},
		Scale:       []float64{4, 0.5, 0.4, 0.4},
		Coef:        []float64{0.8, -1, 0.5, 2},
		Intercept:   -0.3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLogisticScore(t *testing.T) {
	m := testLogistic(t)
	// reference: expand, standardise, dot
	ref := func(x0 float64, code int) float64 {
		cols := []float64{x0, 0, 0, 0}
		if code >= 0 && code < 3 {
			cols[1+code] = 1
		}
		z := -0.3
		mean := []float64{2, 0.5, 0.3, 0.2}
		scale := []float64{4, 0.5, 0.4, 0.4}
		coef := []float64{0.8, -1, 0.5, 2}
		for c := range cols {
			z += coef[c] * (cols[c] - mean[c]) / scale[c]
		}
		return 1 / (1 + math.Exp(-z))
	}
	tests := []struct {
		name string
		x    []float64
		want float64
	}{
		{"code0", []float64{1.5, 0}, ref(1.5, 0)},
		{"code2", []float64{-3, 2}, ref(-3, 2)},
		{"unseen code", []float64{0, 7}, ref(0, -1)},
		{"NaN code", []float64{0, math.NaN()}, ref(0, -1)},
		{"NaN numeric is the mean", []float64{math.NaN(), 1}, ref(2, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Score(tc.x)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tc.want, 1e-12) {
				t.Errorf("Score(%v) = %v, want %v", tc.x, got, tc.want)
			}
		})
	}
	if _, err := m.Score([]float64{1}); !errors.Is(err, model.ErrFeatureCount) {
		t.Errorf("short vector: err = %v, want ErrFeatureCount", err)
	}
}

func TestNewLogisticRejects(t *testing.T) {
	_, err := model.NewLogistic(model.Logistic{Features: []string{"a"}, Levels: []int{0}, Mean: []float64{0}, Scale: []float64{1}})
	if err == nil {
		t.Fatal("missing coefficients accepted")
	}
}

// stump: x0 <= 1 -> (x1 <= 0.5 -> -1 : 2) : 3, plus a second tree on x1.
func testEnsemble(t testing.TB) *model.Ensemble {
	t.Helper()
	e, err := model.NewEnsemble(model.Ensemble{
		Features:  []string{"x0", "x1"},
		Base:      0.25,
		Roots:     []int32{0, 5},
		Feature:   []int32{0, 1, -1, -1, -1, 1, -1, -1},
		Threshold: []float64{1, 0.5, 0, 0, 0, 10, 0, 0},
		Left:      []int32{1, 3, 0, 0, 0, 6, 0, 0},
		Right:     []int32{2, 4, 0, 0, 0, 7, 0, 0},
		Value:     []float64{0, 0, 3, -1, 2, 0, 0.5, -0.5},
		Gain:      []float64{1, 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnsembleMargin(t *testing.T) {
	e := testEnsemble(t)
	tests := []struct {
		x    []float64
		want float64
	}{
		{[]float64{0, 0}, 0.25 - 1 + 0.5},
		{[]float64{1, 0.6}, 0.25 + 2 + 0.5},
		{[]float64{1.1, 20}, 0.25 + 3 - 0.5},
		{[]float64{math.NaN(), math.NaN()}, 0.25 - 1 + 0.5}, // NaN goes left
	}
	for _, tc := range tests {
		got, err := e.Margin(tc.x)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Margin(%v) = %v, want %v", tc.x, got, tc.want)
		}
		p, _ := e.Score(tc.x)
		if !near(p, model.Sigmoid(tc.want), 1e-15) {
			t.Errorf("Score(%v) = %v", tc.x, p)
		}
	}
	if _, err := e.Score([]float64{1, 2, 3}); !errors.Is(err, model.ErrFeatureCount) {
		t.Errorf("long vector: err = %v", err)
	}
}

func TestNewEnsembleRejectsCycles(t *testing.T) {
	_, err := model.NewEnsemble(model.Ensemble{Features: []string{"a"}, Roots: []int32{0},
		Feature: []int32{0, -1}, Threshold: []float64{0, 0}, Left: []int32{0, 0}, Right: []int32{1, 0}, Value: []float64{0, 1}})
	if err == nil {
		t.Fatal("self-loop accepted")
	}
}

func TestCalibratedMap(t *testing.T) {
	base := testEnsemble(t)
	iso, err := model.NewCalibrated(model.Calibrated{Base: base, Method: model.Isotonic,
		X: []float64{0.2, 0.4, 0.8}, Y: []float64{0.1, 0.3, 0.9}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ s, want float64 }{{0.1, 0.1}, {0.2, 0.1}, {0.3, 0.2}, {0.6, 0.6}, {0.8, 0.9}, {0.95, 0.9}} {
		if got := iso.Map(tc.s); !near(got, tc.want, 1e-12) {
			t.Errorf("isotonic Map(%v) = %v, want %v", tc.s, got, tc.want)
		}
	}
	pl, err := model.NewCalibrated(model.Calibrated{Base: base, Method: model.Platt, A: 2, B: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pl.Map(0.7), model.Sigmoid(2*math.Log(0.7/0.3)-1); !near(got, want, 1e-12) {
		t.Errorf("platt Map = %v, want %v", got, want)
	}
	if _, err := model.NewCalibrated(model.Calibrated{Base: base, Method: model.Isotonic, X: []float64{1, 0}, Y: []float64{0, 1}}); err == nil {
		t.Error("unsorted knots accepted")
	}
}

func TestArtifactRoundTrip(t *testing.T) {
	lg := testLogistic(t)
	en := testEnsemble(t)
	cal, err := model.NewCalibrated(model.Calibrated{Base: en, Method: model.Isotonic, X: []float64{0.1, 0.9}, Y: []float64{0.2, 0.7}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, m := range []model.Binary{lg, en, cal} {
		info := model.Describe(m)
		t.Run(info.Kind, func(t *testing.T) {
			var buf bytes.Buffer
			a := model.Artifact{Model: m, Info: model.Info{Learner: "test", Params: []byte(`{"l2":1}`), Note: "n"}}
			if err := model.WriteArtifact(&buf, a); err != nil {
				t.Fatal(err)
			}
			text := buf.String()
			got, err := model.ReadArtifact(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if got.Info.Kind != info.Kind || got.Info.Learner != "test" || string(got.Info.Params) != `{"l2":1}` {
				t.Errorf("info = %+v", got.Info)
			}
			if err := model.CheckSchema(got.Info, info.Features); err != nil {
				t.Error(err)
			}
			for k := 0; k < 200; k++ {
				x := []float64{rng.NormFloat64() * 3, float64(rng.IntN(4))}
				a, _ := m.Score(x)
				b, _ := got.Model.Score(x)
				if a != b {
					t.Fatalf("score %v: %v before, %v after round trip", x, a, b)
				}
			}
			// a second write is byte-identical
			var again bytes.Buffer
			if err := model.WriteArtifact(&again, *got); err != nil {
				t.Fatal(err)
			}
			if again.String() != text {
				t.Error("rewrite differs")
			}
		})
	}
	path := filepath.Join(t.TempDir(), "m.json")
	if err := model.WriteFile(path, en); err != nil {
		t.Fatal(err)
	}
	back, err := model.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.NumFeatures() != 2 {
		t.Errorf("NumFeatures = %d", back.NumFeatures())
	}
}

func TestArtifactErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := model.Write(&buf, testLogistic(t)); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	tests := []struct {
		name, doc string
		want      error
	}{
		{"newer version", strings.Replace(good, `"version":1`, `"version":2`, 1), model.ErrVersion},
		{"wrong format", strings.Replace(good, `"nudge-model"`, `"other"`, 1), model.ErrFormat},
		{"unknown kind", good[:strings.LastIndex(good, `"kind":"logistic"`)] + `"kind":"svm"` + good[strings.LastIndex(good, `"kind":"logistic"`)+len(`"kind":"logistic"`):], model.ErrFormat},
		{"info disagrees", strings.Replace(good, `"features":["x0","x1"]`, `"features":["x0","zz"]`, 1), model.ErrFormat},
		{"truncated", good[:len(good)/2], model.ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := model.Read(strings.NewReader(tc.doc)); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := model.CheckSchema(model.Info{Features: []string{"a", "b"}}, []string{"a", "c"}); !errors.Is(err, model.ErrSchema) {
		t.Errorf("CheckSchema: %v", err)
	}
}

// randomEnsemble builds trees full to depth over d features.
func randomEnsemble(tb testing.TB, trees, depth, d int) *model.Ensemble {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	return growEnsemble(tb, rng, model.Ensemble{}, trees, d,
		func(level int) bool { return level < depth }, rng.NormFloat64)
}

// growEnsemble fills e with trees random trees over d features and builds it. Each node
// draws its leaf value, then asks splits whether it splits at its level; a split node draws
// its feature, then its threshold from threshold.
func growEnsemble(tb testing.TB, rng *rand.Rand, e model.Ensemble, trees, d int, splits func(level int) bool, threshold func() float64) *model.Ensemble {
	tb.Helper()
	e.Features = make([]string, d)
	for j := range e.Features {
		e.Features[j] = "f" + string(rune('a'+j%26)) + string(rune('a'+j/26))
	}
	var grow func(level int) int32
	grow = func(level int) int32 {
		id := int32(len(e.Feature))
		e.Feature = append(e.Feature, -1)
		e.Threshold = append(e.Threshold, 0)
		e.Left = append(e.Left, 0)
		e.Right = append(e.Right, 0)
		e.Value = append(e.Value, rng.NormFloat64()*0.1)
		if splits(level) {
			e.Feature[id] = int32(rng.IntN(d))
			e.Threshold[id] = threshold()
			l := grow(level + 1)
			r := grow(level + 1)
			e.Left[id], e.Right[id] = l, r
		}
		return id
	}
	for k := 0; k < trees; k++ {
		e.Roots = append(e.Roots, grow(0))
	}
	m, err := model.NewEnsemble(e)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func randomLogistic(tb testing.TB, d int) *model.Logistic {
	tb.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	l := model.Logistic{Features: make([]string, d), Levels: make([]int, d)}
	for j := 0; j < d; j++ {
		l.Features[j] = "f"
		l.Mean = append(l.Mean, rng.NormFloat64())
		l.Scale = append(l.Scale, 1+rng.Float64())
		l.Coef = append(l.Coef, rng.NormFloat64())
	}
	m, err := model.NewLogistic(l)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestScoreDoesNotAllocate(t *testing.T) {
	x := make([]float64, 30)
	for _, m := range []model.Binary{randomLogistic(t, 30), randomEnsemble(t, 200, 6, 30)} {
		if n := testing.AllocsPerRun(100, func() { _, _ = m.Score(x) }); n != 0 {
			t.Errorf("%T.Score allocates %v times", m, n)
		}
	}
}

// BenchmarkScoreLogisticSynthetic scores one 30-feature vector.
func BenchmarkScoreLogisticSynthetic(b *testing.B) {
	m := randomLogistic(b, 30)
	x := make([]float64, 30)
	for i := range x {
		x[i] = float64(i) / 30
	}
	b.ReportAllocs()
	var s float64
	for b.Loop() {
		v, _ := m.Score(x)
		s += v
	}
	_ = s
}

// BenchmarkScoreGBDT200Synthetic scores one 30-feature vector with 200 full trees of depth 6.
func BenchmarkScoreGBDT200Synthetic(b *testing.B) {
	m := randomEnsemble(b, 200, 6, 30)
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([][]float64, 64)
	for k := range xs {
		xs[k] = make([]float64, 30)
		for i := range xs[k] {
			xs[k][i] = rng.NormFloat64()
		}
	}
	b.ReportAllocs()
	var s float64
	i := 0
	for b.Loop() {
		v, _ := m.Score(xs[i&63])
		s += v
		i++
	}
	_ = s
}

func TestEnsembleSignedZeroAndInf(t *testing.T) {
	e, err := model.NewEnsemble(model.Ensemble{Features: []string{"a"}, Roots: []int32{0},
		Feature: []int32{0, -1, -1}, Threshold: []float64{math.Copysign(0, -1), 0, 0},
		Left: []int32{1, 0, 0}, Right: []int32{2, 0, 0}, Value: []float64{0, -1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ x, want float64 }{
		{0, -1}, {math.Copysign(0, -1), -1}, {1e-300, 1}, {-1e-300, -1}, {math.Inf(1), 1}, {math.Inf(-1), -1},
	} {
		if got, _ := e.Margin([]float64{tc.x}); got != tc.want {
			t.Errorf("Margin(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

// TestEnsembleMatchesReferenceWalk compares the packed, eight-at-a-time walk with a plain walk
// of the serialised arrays (x > threshold goes right, NaN left), bit for bit.
func TestEnsembleMatchesReferenceWalk(t *testing.T) {
	for _, trees := range []int{1, 3, 4, 7, 203} {
		e := randomEnsemble(t, trees, 1+trees%6, 9)
		rng := rand.New(rand.NewPCG(uint64(trees), 1))
		x := make([]float64, 9)
		for k := 0; k < 300; k++ {
			for j := range x {
				x[j] = rng.NormFloat64()
				if rng.IntN(20) == 0 {
					x[j] = math.NaN()
				}
			}
			want := e.Base
			for _, n := range e.Roots {
				for e.Feature[n] >= 0 {
					if x[e.Feature[n]] > e.Threshold[n] {
						n = e.Right[n]
					} else {
						n = e.Left[n]
					}
				}
				want += e.Value[n]
			}
			got, err := e.Margin(x)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%d trees, x=%v: Margin %v, reference %v", trees, x, got, want)
			}
		}
	}
}

// unevenEnsemble builds trees whose leaves lie at random depths up to maxDepth (a split stops
// with probability stop at each level), with thresholds that include -0 and exact feature
// values, so the perfect layout's padding and the sign test are exercised.
func unevenEnsemble(tb testing.TB, seed uint64, trees, maxDepth, d int, stop float64) *model.Ensemble {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	return growEnsemble(tb, rng, model.Ensemble{Base: rng.NormFloat64()}, trees, d,
		func(level int) bool { return level < maxDepth && rng.Float64() >= stop },
		func() float64 {
			switch rng.IntN(8) {
			case 0:
				return math.Copysign(0, -1)
			case 1:
				return float64(rng.IntN(3))
			default:
				return rng.NormFloat64()
			}
		})
}

// referenceMargin walks the serialised arrays one tree at a time (x > threshold goes right,
// NaN left).
func referenceMargin(e *model.Ensemble, x []float64) float64 {
	s := e.Base
	for _, n := range e.Roots {
		for e.Feature[n] >= 0 {
			if x[e.Feature[n]] > e.Threshold[n] {
				n = e.Right[n]
			} else {
				n = e.Left[n]
			}
		}
		s += e.Value[n]
	}
	return s
}

// TestEnsembleWalksMatchReference checks both walks (the fixed-depth one, with its NaN
// replacement and leaf self-loops, and the one with a leaf test) against the reference walk
// bit for bit, on uneven trees and on inputs with NaN, infinities, zeros of both signs and
// values equal to thresholds, for rows the fixed-depth walk takes and rows too wide for it.
func TestEnsembleWalksMatchReference(t *testing.T) {
	tests := []struct {
		name            string
		trees, depth, d int
		stop            float64
	}{
		{"leaves only", 5, 0, 9, 0},
		{"uneven depth 3", 203, 3, 9, 0.25},
		{"uneven depth 4", 7, 4, 9, 0.3},
		{"full depth 6", 9, 6, 9, 0},
		{"deep and uneven", 13, 12, 9, 0.15},
		{"one tree", 1, 2, 9, 0.2},
		{"widest flat row", 41, 4, model.MaxFlatFeatures, 0.1},
		{"row too wide for the flat walk", 41, 4, model.MaxFlatFeatures + 1, 0.1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := unevenEnsemble(t, uint64(i), tc.trees, tc.depth, tc.d, tc.stop)
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 1, 2}
			x := make([]float64, tc.d)
			for k := 0; k < 500; k++ {
				for j := range x {
					x[j] = rng.NormFloat64()
					if rng.IntN(4) == 0 {
						x[j] = special[rng.IntN(len(special))]
					}
				}
				want := referenceMargin(e, x)
				got, err := e.Margin(x)
				if err != nil {
					t.Fatal(err)
				}
				if lt := model.LeafTestMargin(e, x); math.Float64bits(lt) != math.Float64bits(want) {
					t.Fatalf("x=%v: leaf-test walk %v, reference %v", x, lt, want)
				}
				if math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("x=%v: Margin %v, reference %v", x, got, want)
				}
			}
		})
	}
}

// BenchmarkEnsembleWalks compares the two walks on the shapes the pipeline fits: the
// propensity GBDT (up to 500 trees of depth 4) and a T-learner arm (200 of depth 3, uneven).
func BenchmarkEnsembleWalks(b *testing.B) {
	for _, sh := range []struct {
		name         string
		trees, depth int
		stop         float64
	}{{"500x4", 500, 4, 0.1}, {"200x3", 200, 3, 0.3}, {"200x6", 200, 6, 0}} {
		e := unevenEnsemble(b, 1, sh.trees, sh.depth, 40, sh.stop)
		rng := rand.New(rand.NewPCG(1, 1))
		xs := make([][]float64, 64)
		for k := range xs {
			xs[k] = make([]float64, 40)
			for i := range xs[k] {
				xs[k][i] = rng.NormFloat64()
			}
		}
		for _, w := range []struct {
			name string
			fn   func(x []float64) float64
		}{
			{"fixed-depth", func(x []float64) float64 { v, _ := e.Margin(x); return v }},
			{"leaf-test", func(x []float64) float64 { return model.LeafTestMargin(e, x) }},
		} {
			b.Run(sh.name+"/"+w.name, func(b *testing.B) {
				b.ReportAllocs()
				var s float64
				i := 0
				for b.Loop() {
					s += w.fn(xs[i&63])
					i++
				}
				_ = s
			})
		}
	}
}
