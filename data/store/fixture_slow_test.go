//go:build slow

package store

// Fixture sizes of the targets: 1,000,000 sessions stored for BenchmarkFeatures and
// 1,000,000 events (100,000 sessions x 10) for BenchmarkReplay.
const (
	defaultFeatureSessions = 1_000_000
	defaultReplaySessions  = 100_000
)
