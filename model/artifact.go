package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Artifact format: one JSON document
//
//	{"format": "nudge-model", "version": 1, "info": {...}, "model": {"kind": ..., ...}}
//
// Floats are written in their shortest exact decimal form, so Read(Write(m)) scores exactly
// as m does. Kinds: "logistic", "ensemble", "calibrated" (which nests its base model).
const (
	Format  = "nudge-model"
	Version = 1
)

// Model kinds.
const (
	KindLogistic   = "logistic"
	KindEnsemble   = "ensemble"
	KindCalibrated = "calibrated"
)

var (
	// ErrFormat is wrapped by errors about an artifact's content.
	ErrFormat = errors.New("model: bad artifact")
	// ErrVersion is returned for an artifact written by a newer format version.
	ErrVersion = errors.New("model: unsupported artifact version")
	// ErrSchema is returned when a model's features do not match the expected ones.
	ErrSchema = errors.New("model: feature schema mismatch")
)

// Info describes a model: what it is and what it was fitted on. Params and Metrics hold the
// learner's options and evaluation figures as their owners marshal them.
type Info struct {
	Kind        string          `json:"kind"`
	Features    []string        `json:"features"`
	Categorical []bool          `json:"categorical,omitempty"`
	Levels      [][]string      `json:"levels,omitempty"` // per feature: category names by code (imported tables)
	Learner     string          `json:"learner,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	Metrics     json.RawMessage `json:"metrics,omitempty"`
	Created     time.Time       `json:"created,omitzero"`
	Note        string          `json:"note,omitempty"`
}

// Artifact is a model with its description.
type Artifact struct {
	Info  Info
	Model Binary
}

// Describe returns the Info a model carries by itself: kind, features, categorical flags.
func Describe(m Binary) Info {
	switch t := m.(type) {
	case *Logistic:
		return Info{Kind: KindLogistic, Features: slices.Clone(t.Features), Categorical: slices.Clone(t.Categorical)}
	case *Ensemble:
		return Info{Kind: KindEnsemble, Features: slices.Clone(t.Features), Categorical: slices.Clone(t.Categorical)}
	case *Calibrated:
		in := Describe(t.Base)
		in.Kind = KindCalibrated
		return in
	}
	return Info{Kind: fmt.Sprintf("%T", m)}
}

// CheckSchema returns ErrSchema (wrapped, naming the first difference) unless the model's
// features are exactly want, in order.
func CheckSchema(info Info, want []string) error {
	if len(info.Features) != len(want) {
		return fmt.Errorf("%w: model has %d features, want %d", ErrSchema, len(info.Features), len(want))
	}
	for i := range want {
		if info.Features[i] != want[i] {
			return fmt.Errorf("%w: feature %d is %q, want %q", ErrSchema, i, info.Features[i], want[i])
		}
	}
	return nil
}

type envelope struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	Info    Info            `json:"info"`
	Model   json.RawMessage `json:"model"`
}

type logisticJSON struct {
	Kind        string    `json:"kind"`
	Features    []string  `json:"features"`
	Categorical []bool    `json:"categorical,omitempty"`
	Levels      []int     `json:"levels"`
	Mean        []float64 `json:"mean"`
	Scale       []float64 `json:"scale"`
	Coef        []float64 `json:"coef"`
	Intercept   float64   `json:"intercept"`
}

type ensembleJSON struct {
	Kind        string    `json:"kind"`
	Features    []string  `json:"features"`
	Categorical []bool    `json:"categorical,omitempty"`
	Base        float64   `json:"base"`
	Roots       []int32   `json:"roots"`
	Feature     []int32   `json:"feature"`
	Threshold   []float64 `json:"threshold"`
	Left        []int32   `json:"left"`
	Right       []int32   `json:"right"`
	Value       []float64 `json:"value"`
	Gain        []float64 `json:"gain,omitempty"`
}

type calibratedJSON struct {
	Kind   string          `json:"kind"`
	Method string          `json:"method"`
	A      float64         `json:"a,omitempty"`
	B      float64         `json:"b,omitempty"`
	X      []float64       `json:"x,omitempty"`
	Y      []float64       `json:"y,omitempty"`
	Base   json.RawMessage `json:"base"`
}

func encodeModel(m Binary) (json.RawMessage, error) {
	var v any
	switch t := m.(type) {
	case *Logistic:
		v = logisticJSON{KindLogistic, t.Features, t.Categorical, t.Levels, t.Mean, t.Scale, t.Coef, t.Intercept}
	case *Ensemble:
		v = ensembleJSON{KindEnsemble, t.Features, t.Categorical, t.Base, t.Roots, t.Feature, t.Threshold, t.Left, t.Right, t.Value, t.Gain}
	case *Calibrated:
		base, err := encodeModel(t.Base)
		if err != nil {
			return nil, err
		}
		v = calibratedJSON{KindCalibrated, t.Method, t.A, t.B, t.X, t.Y, base}
	default:
		return nil, fmt.Errorf("model: cannot serialise %T", m)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("model: encode: %w", err)
	}
	return b, nil
}

func decodeModel(raw json.RawMessage) (Binary, error) {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrFormat, head.Kind, err)
		}
		return nil
	}
	switch head.Kind {
	case KindLogistic:
		var j logisticJSON
		if err := dec(&j); err != nil {
			return nil, err
		}
		m, err := NewLogistic(Logistic{Features: j.Features, Categorical: j.Categorical, Levels: j.Levels,
			Mean: j.Mean, Scale: j.Scale, Coef: j.Coef, Intercept: j.Intercept})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return m, nil
	case KindEnsemble:
		var j ensembleJSON
		if err := dec(&j); err != nil {
			return nil, err
		}
		m, err := NewEnsemble(Ensemble{Features: j.Features, Categorical: j.Categorical, Base: j.Base, Roots: j.Roots,
			Feature: j.Feature, Threshold: j.Threshold, Left: j.Left, Right: j.Right, Value: j.Value, Gain: j.Gain})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return m, nil
	case KindCalibrated:
		var j calibratedJSON
		if err := dec(&j); err != nil {
			return nil, err
		}
		base, err := decodeModel(j.Base)
		if err != nil {
			return nil, err
		}
		m, err := NewCalibrated(Calibrated{Base: base, Method: j.Method, A: j.A, B: j.B, X: j.X, Y: j.Y})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: unknown model kind %q", ErrFormat, head.Kind)
}

// WriteArtifact writes a model and its info. Kind, Features and Categorical are taken from
// the model, whatever a.Info says.
func WriteArtifact(w io.Writer, a Artifact) error {
	body, err := encodeModel(a.Model)
	if err != nil {
		return err
	}
	info := a.Info
	d := Describe(a.Model)
	info.Kind, info.Features, info.Categorical = d.Kind, d.Features, d.Categorical
	enc := json.NewEncoder(w)
	if err := enc.Encode(envelope{Format: Format, Version: Version, Info: info, Model: body}); err != nil {
		return fmt.Errorf("model: write: %w", err)
	}
	return nil
}

// Write writes a model with the Info it carries (Describe).
func Write(w io.Writer, m Binary) error { return WriteArtifact(w, Artifact{Model: m}) }

// ReadArtifact reads a model and its info, checking the format and version.
func ReadArtifact(r io.Reader) (*Artifact, error) {
	var env envelope
	if err := json.NewDecoder(r).Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if env.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrFormat, env.Format, Format)
	}
	if env.Version < 1 || env.Version > Version {
		return nil, fmt.Errorf("%w: version %d (this build reads up to %d)", ErrVersion, env.Version, Version)
	}
	m, err := decodeModel(env.Model)
	if err != nil {
		return nil, err
	}
	if err := CheckSchema(env.Info, Describe(m).Features); err != nil {
		return nil, fmt.Errorf("%w: info and model disagree: %w", ErrFormat, err)
	}
	return &Artifact{Info: env.Info, Model: m}, nil
}

// Read reads a model.
func Read(r io.Reader) (Binary, error) {
	a, err := ReadArtifact(r)
	if err != nil {
		return nil, err
	}
	return a.Model, nil
}

// WriteArtifactFile writes an artifact to path (via a temporary file and rename).
func WriteArtifactFile(path string, a Artifact) error {
	var buf bytes.Buffer
	if err := WriteArtifact(&buf, a); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("model: write file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("model: write file: %w", err)
	}
	return nil
}

// WriteFile writes a model to path.
func WriteFile(path string, m Binary) error { return WriteArtifactFile(path, Artifact{Model: m}) }

// ReadArtifactFile reads an artifact from path.
func ReadArtifactFile(path string) (*Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: read file: %w", err)
	}
	defer f.Close()
	a, err := ReadArtifact(f)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	return a, nil
}

// ReadFile reads a model from path.
func ReadFile(path string) (Binary, error) {
	a, err := ReadArtifactFile(path)
	if err != nil {
		return nil, err
	}
	return a.Model, nil
}
