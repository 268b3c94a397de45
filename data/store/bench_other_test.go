//go:build !linux

package store

import "time"

// threadCPU is not measured outside Linux (the metrics read zero).
func threadCPU() time.Duration { return 0 }

func threadFaults() int64 { return 0 }

func processCPU() time.Duration { return 0 }
