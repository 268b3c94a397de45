// Command nudge is nudge's one binary: `nudge serve` runs the API, `nudge import` loads
// historical events, `nudge bench ingest` measures ingestion. New subcommands live in their
// own file and are listed in root.go's subcommands.
//
// It owns flags, environment variables and wiring only: it adapts data/store and data/wire
// to the interfaces serve/ declares (wiring.go). Logic belongs in the packages; main only
// turns signals into a context and calls run.
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
