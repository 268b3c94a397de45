// Package features owns the event and feature-vector types, the versioned feature schema and
// the pure extraction code: folding one event into a session's state and turning that state
// into a vector. The same fold runs at ingest (live) and at replay (training), so there is one
// feature code path and no train/serve skew.
//
// It imports nothing of ours and no storage, HTTP or learning library.
package features
