// Package model owns fitted models' artifacts and scoring: immutable once built, safe to share
// across goroutines, allocation-free on the scoring path. A vector whose length does not match
// the model is an error, never a silent zero.
//
// It imports features/ at most: no storage (badger), no HTTP (echo), no learning library.
package model
