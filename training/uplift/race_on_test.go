//go:build race

package uplift_test

const raceEnabled = true
