//go:build race

package training_test

func init() { raceEnabled = true }
