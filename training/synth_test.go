package training_test

import (
	"math"
	"math/rand/v2"

	"github.com/nudgehq/nudge/training"
)

// synth generates a deterministic binary-outcome table of n rows and d >= 6 features: the
// last three are categorical codes (0..4), the rest standard normal (every 7th uniform on
// [0,10]). The outcome's log-odds mix linear terms, an interaction, a threshold and a
// category effect, so trees have something to find beyond a linear model.
func synth(n, d int, seed uint64) *training.Dataset {
	rng := rand.New(rand.NewPCG(seed, 0xda7a))
	ds := &training.Dataset{Names: make([]string, d), Categorical: make([]bool, d),
		X: make([]float64, n*d), Y: make([]float64, n)}
	for j := 0; j < d; j++ {
		ds.Names[j] = "x" + itoa(j)
		ds.Categorical[j] = j >= d-3
	}
	catEffect := []float64{-1, 0, 0.5, 1, -0.5}
	for i := 0; i < n; i++ {
		row := ds.X[i*d : (i+1)*d]
		for j := 0; j < d; j++ {
			switch {
			case ds.Categorical[j]:
				row[j] = float64(rng.IntN(5))
			case j%7 == 6:
				row[j] = rng.Float64() * 10
			default:
				row[j] = rng.NormFloat64()
			}
		}
		z := -1.5 + 0.8*row[0] - 0.6*row[1] + 0.4*row[2] + 0.9*row[0]*row[3]
		if row[4] > 0.5 {
			z += 1.2
		}
		z += catEffect[int(row[d-1])]
		for j := 5; j < d-3; j++ { // weak signal spread over the rest
			z += 0.05 * row[j] * float64(j%3-1)
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			ds.Y[i] = 1
		}
	}
	return ds
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// raceEnabled is set under -race, where the heaviest numeric tests skip themselves.
var raceEnabled bool
