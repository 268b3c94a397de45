//go:build linux

package main

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling OS thread so far (RUSAGE_THREAD): with the
// goroutine locked to its thread, the CPU time of the decide path alone, without the writer
// goroutine, the background GC, or the time the thread waited for a core on a busy machine.
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1 // RUSAGE_THREAD, Linux only
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
