//go:build !linux

package main

import "time"

// threadCPU is Linux only (RUSAGE_THREAD); elsewhere the benchmarks do not report it.
func threadCPU() (time.Duration, bool) { return 0, false }
