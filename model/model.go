package model

import "errors"

// ErrFeatureCount is returned when a vector's length does not match the model's features.
var ErrFeatureCount = errors.New("model: wrong feature count")

// Binary is a fitted binary-outcome model: Score returns the (calibrated, where the model is)
// probability of the positive outcome for one feature vector. Implementations are immutable
// once built and safe for concurrent use; Score must not allocate.
type Binary interface {
	NumFeatures() int
	Score(x []float64) (float64, error)
}
