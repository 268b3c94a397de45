package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// app is what every subcommand gets: the streams, the environment and a logger factory.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// subcommands builds the root's subcommands. A new subcommand lives in its own file and
// adds its constructor here.
var subcommands = []func(*app) *cobra.Command{
	newServeCmd,
	newImportCmd,
	newBenchCmd,
	newDemoCmd,
	newTrainCmd, newModelsCmd, newPredictCmd,
	newReportCmd,
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run is the whole program: it parses args, runs the subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := &cobra.Command{
		Use:   "nudge",
		Short: "nudge: self-hosted predictive intervention scoring",
		Long: "nudge tracks what visitors do on a website, scores live sessions for conversion\n" +
			"propensity and intervention uplift, and reports what the interventions achieved.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, mk := range subcommands {
		root.AddCommand(mk(a))
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "nudge: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// bindEnv gives each named flag a default from its environment variable when the flag was
// not set on the command line, so flags win over the environment.
func bindEnv(a *app, fs *pflag.FlagSet, env map[string]string) error {
	for name, key := range env {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		if v := a.getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("environment %s=%q: %w", key, v, err)
			}
		}
	}
	return nil
}

// newLogger builds the slog logger of --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
