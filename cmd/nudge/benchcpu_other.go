//go:build !unix

package main

// ingestUsage is not measured on this platform.
func ingestUsage() procUsage { return procUsage{} }
