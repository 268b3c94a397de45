//go:build unix

package main

import (
	"syscall"
	"time"
)

// ingestUsage is the process's user+system CPU time and page faults so far (zero if
// unavailable).
func ingestUsage() procUsage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return procUsage{}
	}
	return procUsage{
		CPU:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		Faults: int64(ru.Minflt + ru.Majflt),
	}
}
