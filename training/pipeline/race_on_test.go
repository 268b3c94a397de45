//go:build race

package pipeline

// raceEnabled: the race detector slows the simulator, the store and the tree learners 5-10x,
// so the quality test runs a smaller simulation under -race.
const raceEnabled = true
