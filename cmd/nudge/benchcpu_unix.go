//go:build unix

package main

import (
	"syscall"
	"time"
)

// ingestProcessCPU is the process's user+system CPU time so far (0 if unavailable).
func ingestProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
