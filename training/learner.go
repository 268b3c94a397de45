package training

import (
	"context"

	"github.com/nudgehq/nudge/model"
)

// Learner fits a binary propensity model. valid may be nil; learners that early-stop use it.
type Learner interface {
	Name() string
	Fit(ctx context.Context, train, valid *Dataset) (model.Binary, error)
}
