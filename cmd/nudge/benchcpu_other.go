//go:build !unix

package main

import "time"

// ingestProcessCPU is not measured on this platform.
func ingestProcessCPU() time.Duration { return 0 }
