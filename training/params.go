package training

import (
	"encoding/json"
	"fmt"
)

// Base returns the wrapped learner.
func (c *Calibrated) Base() Learner { return c.base }

// Options returns the effective calibration options.
func (c *Calibrated) Options() CalibrationOptions { return c.opt }

// LearnerParams returns a learner's effective options as JSON, for model.Info.Params:
// {"learner": name, "options": {...}} and, for a calibrated learner, its base's under "base".
func LearnerParams(l Learner) (json.RawMessage, error) {
	type params struct {
		Learner string          `json:"learner"`
		Options any             `json:"options,omitempty"`
		Base    json.RawMessage `json:"base,omitempty"`
	}
	p := params{Learner: l.Name()}
	switch t := l.(type) {
	case *Logistic:
		p.Options = t.Options()
	case *GBDT:
		p.Options = t.Options()
	case *Calibrated:
		p.Options = t.Options()
		b, err := LearnerParams(t.Base())
		if err != nil {
			return nil, err
		}
		p.Base = b
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("training: learner params: %w", err)
	}
	return b, nil
}
