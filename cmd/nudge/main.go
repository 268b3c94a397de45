// Command nudge is nudge's one binary: `nudge serve` runs the API, `nudge import` loads
// historical events, `nudge bench` measures ingestion. main only wires signals to run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
