package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nudgehq/nudge/data/importer"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
)

// importFlags are the flags of `nudge import`.
type importFlags struct {
	site           string
	format         string
	data           string
	config         string
	unsafeNoSync   bool
	batch          int
	showRejections int
	logLevel       string
}

func newImportCmd(a *app) *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import historical events from JSON Lines or CSV files",
		Long: `Import historical events into the store. Each row is validated with the same rules as
POST /v1/events; bad rows are reported (line, field, reason) and skipped, the rest are stored.
Importing the same file again stores nothing new: events are deduplicated on event_id.

Formats: jsonl (one wire event per line), csv (a header with event_id, session_id,
anonymous_id, user_id, type, timestamp, name, value, consent and props.<key> columns), otto
(the OTTO sessions CSV: session,aid,ts,type with clicks/carts/orders mapped onto
page_view/micro_conversion/macro_conversion). Without --format it is detected per file.

The server must not be running on the same --data directory (Badger allows one process).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(a, cmd.Flags(), map[string]string{
				"data": "NUDGE_DATA", "config": "NUDGE_CONFIG", "log-level": "NUDGE_LOG_LEVEL",
			}); err != nil {
				return &exitError{2, err}
			}
			return runImport(cmd.Context(), a, f, args)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.site, "site", "", "site the events belong to (default: the config's only site)")
	fs.StringVar(&f.format, "format", "", "jsonl, csv or otto (default: detected per file)")
	fs.StringVar(&f.data, "data", "./nudge-data", "data directory (Badger)")
	fs.StringVar(&f.config, "config", "", "site configuration file (YAML); none means the demo site")
	fs.BoolVar(&f.unsafeNoSync, "unsafe-no-sync", false, "do not fsync each batch (a power cut can lose imported events)")
	fs.IntVar(&f.batch, "batch", 500, "events per store write")
	fs.IntVar(&f.showRejections, "show-rejections", 20, "rejected rows to list per file (the rest are counted)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

// importTotals sums the reports of several files.
type importTotals struct {
	files                                          int
	rows, imported, duplicates, unlogged, rejected int64
}

func runImport(ctx context.Context, a *app, f importFlags, files []string) error {
	log, err := newLogger(a.stderr, f.logLevel, "text")
	if err != nil {
		return &exitError{2, err}
	}
	switch f.format {
	case "", "jsonl", "csv", "otto":
	default:
		return &exitError{2, fmt.Errorf("--format %q: want jsonl, csv or otto", f.format)}
	}
	cfg, err := loadConfig(f.config, log)
	if err != nil {
		return &exitError{2, err}
	}
	if f.site == "" {
		if len(cfg.Sites) != 1 {
			return &exitError{2, errors.New("--site is required: the configuration has several sites")}
		}
		f.site = cfg.Sites[0].ID
	}
	site, ok := cfg.Site(f.site)
	if !ok {
		return &exitError{2, fmt.Errorf("--site %q: no such site in %s", f.site, cfg.Path)}
	}
	// Fail on unreadable files before opening the store.
	for _, name := range files {
		if fi, err := os.Stat(name); err != nil {
			return fmt.Errorf("import: %w", err)
		} else if fi.IsDir() {
			return fmt.Errorf("import: %s is a directory", name)
		}
	}
	if err := os.MkdirAll(f.data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := openStore(ctx, cfg, storeOptions{dir: f.data, noSync: f.unsafeNoSync}, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := st.Close(cctx); cerr != nil {
			fmt.Fprintf(a.stderr, "nudge: close store: %v\n", cerr)
		}
	}()

	sink := func(ctx context.Context, evs []features.Event) (int, int, int, error) {
		r, err := st.Append(ctx, site.ID, evs)
		return r.Stored, r.Duplicates, r.Unlogged, err
	}
	var tot importTotals
	start := time.Now()
	for _, name := range files {
		rep, err := importFile(ctx, a, f, site.ID, site.ConsentByDefault(), name, sink)
		tot.files++
		tot.rows += rep.Rows
		tot.imported += rep.Imported
		tot.duplicates += rep.Duplicates
		tot.unlogged += rep.Unlogged
		tot.rejected += rep.Rejected
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
	}
	elapsed := time.Since(start)
	if len(files) > 1 {
		fmt.Fprintf(a.stdout, "total: %d files, %d rows: %d imported, %d duplicates, %d unlogged, %d rejected in %s (%.0f rows/s)\n",
			tot.files, tot.rows, tot.imported, tot.duplicates, tot.unlogged, tot.rejected,
			elapsed.Round(time.Millisecond), float64(tot.rows)/elapsed.Seconds())
	}
	if tot.rows > 0 && tot.rejected == tot.rows {
		return &exitError{1, fmt.Errorf("import: every row (%d) was rejected", tot.rows)}
	}
	return nil
}

// isTerminal reports whether w is a terminal (progress bars only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// importFile imports one file with a progress display and prints its summary and rejections.
func importFile(ctx context.Context, a *app, f importFlags, site string, consent bool, name string,
	sink importer.Sink) (importer.Report, error) {
	file, err := os.Open(name)
	if err != nil {
		return importer.Report{}, err
	}
	defer file.Close()
	var size int64
	if fi, err := file.Stat(); err == nil {
		size = fi.Size()
	}
	format := importer.Format(f.format)
	if format == "" {
		format = importer.FormatFromName(name) // "" or csv: Import refines from the content
	}
	var progress func(importer.Progress)
	var bar *progressbar.ProgressBar
	if isTerminal(a.stderr) {
		bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(filepath.Base(name)),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		progress = func(p importer.Progress) { bar.Set64(p.Bytes) }
	} else {
		last := time.Now()
		progress = func(p importer.Progress) {
			if time.Since(last) < 2*time.Second {
				return
			}
			last = time.Now()
			pct := 0.0
			if size > 0 {
				pct = 100 * float64(p.Bytes) / float64(size)
			}
			fmt.Fprintf(a.stderr, "import %s: %.0f%%, %d rows, %d imported, %d duplicates, %d rejected\n",
				name, pct, p.Rows, p.Imported, p.Duplicates, p.Rejected)
		}
	}
	start := time.Now()
	rep, err := importer.Import(ctx, file, importer.Options{
		Site: site, Format: format, ConsentDefault: consent, BatchSize: f.batch, Progress: progress,
	}, sink)
	if bar != nil {
		bar.Finish()
	}
	elapsed := time.Since(start)
	fmt.Fprintf(a.stdout, "%s: %d rows: %d imported, %d duplicates, %d unlogged, %d rejected in %s (%.0f rows/s)\n",
		name, rep.Rows, rep.Imported, rep.Duplicates, rep.Unlogged, rep.Rejected,
		elapsed.Round(time.Millisecond), float64(rep.Rows)/max(elapsed.Seconds(), 1e-9))
	printRejections(a.stdout, name, rep, f.showRejections)
	if errors.Is(err, store.ErrOverloaded) {
		err = fmt.Errorf("%w (lower --batch)", err)
	}
	return rep, err
}

// printRejections lists the first n rejected rows and counts the rest.
func printRejections(w io.Writer, name string, rep importer.Report, n int) {
	if rep.Rejected == 0 {
		return
	}
	fmt.Fprintf(w, "rejected rows in %s:\n", name)
	shown := min(n, len(rep.Rejections))
	for _, r := range rep.Rejections[:shown] {
		field := r.Field
		if field == "" {
			field = "(row)"
		}
		fmt.Fprintf(w, "  %s:%d: %s: %s\n", name, r.Line, field, r.Reason)
	}
	if rest := rep.Rejected - int64(shown); rest > 0 {
		fmt.Fprintf(w, "  ... and %d more rejected rows\n", rest)
	}
}
