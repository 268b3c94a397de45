package uplift

import (
	"errors"
	"fmt"

	"github.com/nudgehq/nudge/model"
)

// Sentinel errors.
var (
	ErrArms     = errors.New("uplift: bad arms")
	ErrData     = errors.New("uplift: bad dataset")
	ErrArtifact = errors.New("uplift: bad artifact")
)

// Model is a fitted multi-arm uplift model. Arms()[0] is the control; Predict writes, for each
// treatment arm k >= 1, the predicted uplift P(y=1|x, arm k) - P(y=1|x, control) into out[k-1]
// (len(out) must be len(Arms())-1). Baseline is the predicted P(y=1|x, control). Models are
// immutable and safe for concurrent use; Predict and Baseline do not allocate.
type Model interface {
	Kind() string
	NumFeatures() int
	Features() []string
	Arms() []string
	Predict(x []float64, out []float64) error
	Baseline(x []float64) (float64, error)
}

// Regression is a fitted real-valued regressor (stage-2 models of the X-learner, the
// transformed-outcome regression). Predict must not allocate.
type Regression interface {
	NumFeatures() int
	Predict(x []float64) (float64, error)
}

type base struct {
	features []string
	arms     []string
}

func (b *base) NumFeatures() int   { return len(b.features) }
func (b *base) Features() []string { return b.features }
func (b *base) Arms() []string     { return b.arms }

func (b *base) check(x, out []float64) error {
	if len(x) != len(b.features) {
		return fmt.Errorf("uplift: %d values for %d features: %w", len(x), len(b.features), model.ErrFeatureCount)
	}
	if len(out) != len(b.arms)-1 {
		return fmt.Errorf("%w: out has %d slots for %d treatment arms", ErrArms, len(out), len(b.arms)-1)
	}
	return nil
}

// TModel is the T-learner's model: one outcome model per arm; uplift = mu_k(x) - mu_0(x).
type TModel struct {
	base
	Outcome []model.Binary // per arm, Outcome[0] the control
}

// Kind is "t-learner".
func (m *TModel) Kind() string { return KindT }

// Predict implements Model.
func (m *TModel) Predict(x, out []float64) error {
	if err := m.check(x, out); err != nil {
		return err
	}
	s0, err := m.Outcome[0].Score(x)
	if err != nil {
		return fmt.Errorf("uplift: t-learner control: %w", err)
	}
	for k := 1; k < len(m.Outcome); k++ {
		s, err := m.Outcome[k].Score(x)
		if err != nil {
			return fmt.Errorf("uplift: t-learner arm %d: %w", k, err)
		}
		out[k-1] = s - s0
	}
	return nil
}

// Baseline implements Model.
func (m *TModel) Baseline(x []float64) (float64, error) { return m.Outcome[0].Score(x) }

// XModel is the X-learner's model: for arm k, tau_k(x) = g_k(x)*Tau0[k-1](x) +
// (1-g_k(x))*Tau1[k-1](x), where g_k(x) = P(T=k | x, T in {0,k}) is either a classifier of arm
// assignment (G[k-1], when G is non-nil) or the constant GConst[k-1].
type XModel struct {
	base
	Control model.Binary // mu_0, the baseline
	Tau0    []Regression // fit on control rows: mu_k(x) - y
	Tau1    []Regression // fit on arm-k rows: y - mu_0(x)
	G       []model.Binary
	GConst  []float64
}

// Kind is "x-learner".
func (m *XModel) Kind() string { return KindX }

// Predict implements Model.
func (m *XModel) Predict(x, out []float64) error {
	if err := m.check(x, out); err != nil {
		return err
	}
	for k := range out {
		t0, err := m.Tau0[k].Predict(x)
		if err != nil {
			return fmt.Errorf("uplift: x-learner tau0 arm %d: %w", k+1, err)
		}
		t1, err := m.Tau1[k].Predict(x)
		if err != nil {
			return fmt.Errorf("uplift: x-learner tau1 arm %d: %w", k+1, err)
		}
		var g float64
		if m.G != nil {
			if g, err = m.G[k].Score(x); err != nil {
				return fmt.Errorf("uplift: x-learner propensity arm %d: %w", k+1, err)
			}
		} else {
			g = m.GConst[k]
		}
		out[k] = g*t0 + (1-g)*t1
	}
	return nil
}

// Baseline implements Model.
func (m *XModel) Baseline(x []float64) (float64, error) { return m.Control.Score(x) }

// TOModel is the transformed-outcome model: Tau[k-1] regresses Z_k on x directly; Control
// (optional) gives the baseline, else the constant BaselineRate.
type TOModel struct {
	base
	Tau          []Regression
	Control      model.Binary
	BaselineRate float64
}

// Kind is "transformed-outcome".
func (m *TOModel) Kind() string { return KindTO }

// Predict implements Model.
func (m *TOModel) Predict(x, out []float64) error {
	if err := m.check(x, out); err != nil {
		return err
	}
	for k := range out {
		v, err := m.Tau[k].Predict(x)
		if err != nil {
			return fmt.Errorf("uplift: transformed outcome arm %d: %w", k+1, err)
		}
		out[k] = v
	}
	return nil
}

// Baseline implements Model.
func (m *TOModel) Baseline(x []float64) (float64, error) {
	if len(x) != len(m.features) {
		return 0, fmt.Errorf("uplift: %d values for %d features: %w", len(x), len(m.features), model.ErrFeatureCount)
	}
	if m.Control == nil {
		return m.BaselineRate, nil
	}
	return m.Control.Score(x)
}

// Model kinds, as written in artifacts.
const (
	KindT  = "t-learner"
	KindX  = "x-learner"
	KindTO = "transformed-outcome"
)
