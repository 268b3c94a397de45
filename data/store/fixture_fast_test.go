//go:build !slow

package store

// Default fixture sizes; `go test -tags slow` uses the sizes (1M sessions, 1M events).
const (
	defaultFeatureSessions = 50_000
	defaultReplaySessions  = 10_000
)
