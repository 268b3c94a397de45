package store

// The read benchmarks' only uses of the warm-up (warm.go), kept in this file so that the
// other benchmark files also build against a store without it (A/B runs against an older
// commit replace this file by one where benchWarmUp returns opts and benchWaitWarmUp does
// nothing).

// benchWarmUp turns Open's warm-up pass on or off.
func benchWarmUp(opts Options, warm bool) Options {
	opts.NoWarmUp = !warm
	return opts
}

// benchWaitWarmUp waits until the warm-up pass has ended.
func benchWaitWarmUp(s *Store) { <-s.warmDone }
