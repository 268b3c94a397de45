//go:build !race

package uplift_test

const raceEnabled = false
