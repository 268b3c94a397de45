package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/training/report"
)

// reportFlags are the flags of `nudge report`.
type reportFlags struct {
	data, config, site string
	server, key        string
	from, to, group    string
	format, section    string
	out                string
	threshold, budget  float64
	window             time.Duration
	halfLife           time.Duration
	outcome            string
	logLevel           string
	timeout            time.Duration
}

func newReportCmd(a *app) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Report funnel, metrics, lift, predicted impact and attribution",
		Long: `Print a site's report: interaction metrics against the previous period of equal length,
a time series, the funnel by phase with drop-off, micro-conversion rates, the measured lift of
the policy (treatment group against the randomized holdout) and of each intervention (inverse
propensity weighted on the logged decisions) with 95% intervals, the predicted impact of the
policy at its threshold and budget and how it moves with them, and attribution of conversions
to channels and interventions under five models (see the training/report package doc for
every formula).

By default the data directory (--data) is opened directly; it must not be in use by a running
server (Badger allows one process). With --server URL and --key ADMINKEY the report is fetched
from a running server's admin API (GET /v1/report) and rendered here.

--from and --to are RFC 3339 times or days (2006-01-02, midnight in the site's time zone);
the range is half-open [from, to) by session start, clamped to the data. --format text (the
default) prints tables; json the whole report; csv one --section (overview, series, funnel,
micro, lift, impact, attribution, or all: every section one after another). --out writes to
a file atomically (a temporary file renamed into place).

Environment: NUDGE_DATA, NUDGE_CONFIG, NUDGE_SITE, NUDGE_SERVER, NUDGE_ADMIN_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("admin-key") {
				cmd.Flags().Lookup("key").Changed = true // the environment must not override it
			}
			if err := bindEnv(a, cmd.Flags(), map[string]string{
				"data": "NUDGE_DATA", "config": "NUDGE_CONFIG", "site": "NUDGE_SITE",
				"server": "NUDGE_SERVER", "key": "NUDGE_ADMIN_KEY", "log-level": "NUDGE_LOG_LEVEL",
			}); err != nil {
				return &exitError{2, err}
			}
			if err := f.validate(cmd); err != nil {
				return &exitError{2, err}
			}
			return runReport(cmd, a, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", "./nudge-data", "data directory (Badger)")
	fs.StringVar(&f.config, "config", "", "site configuration file (YAML); none means the demo site")
	fs.StringVar(&f.site, "site", "", "site (default: the config's only site; with --server, the admin key's site)")
	fs.StringVar(&f.server, "server", "", "base URL of a running nudge server (e.g. http://127.0.0.1:8080)")
	fs.StringVar(&f.key, "key", "", "the site's admin key, for --server")
	fs.StringVar(&f.key, "admin-key", "", "same as --key (the spelling of nudge models)")
	fs.StringVar(&f.from, "from", "", "start of the range: RFC 3339 or 2006-01-02 in the site's time zone (default: the first event)")
	fs.StringVar(&f.to, "to", "", "end of the range, exclusive (default: just after the last event)")
	fs.StringVar(&f.group, "group", "", "time series bucket: hour, day or week (default: from the range length)")
	fs.StringVar(&f.format, "format", "text", "output: text, json or csv")
	fs.StringVar(&f.section, "section", "", "csv: the section to write ("+strings.Join(report.Sections, ", ")+" or all)")
	fs.StringVarP(&f.out, "out", "o", "", "write to this file (atomically) instead of standard output")
	fs.Float64Var(&f.threshold, "threshold", 0, "impact: the policy's expected-value threshold (default: the site's)")
	fs.Float64Var(&f.budget, "budget", 0, "impact: the budget share in (0, 1] (default: the site's)")
	fs.DurationVar(&f.window, "window", 0, "lift: the outcome window after a decision (default: the training label window, 24h); --data only")
	fs.DurationVar(&f.halfLife, "half-life", 0, "attribution: the time-decay half-life (default 168h); --data only")
	fs.StringVar(&f.outcome, "outcome", "", "lift outcome: visitor (a conversion within --window) or session (later in the same session); --data only")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "HTTP timeout with --server")
	return cmd
}

// validate checks the flags that need no store.
func (f *reportFlags) validate(cmd *cobra.Command) error {
	switch f.format {
	case "text", "json":
		if f.section != "" {
			return fmt.Errorf("--section is for --format csv")
		}
	case "csv":
		if f.section == "" {
			return fmt.Errorf("--format csv needs --section (%s, or all)", strings.Join(report.Sections, ", "))
		}
		if f.section != "all" && !slices.Contains(report.Sections, f.section) {
			return fmt.Errorf("--section %q: want %s or all", f.section, strings.Join(report.Sections, ", "))
		}
	default:
		return fmt.Errorf("--format %q: want text, json or csv", f.format)
	}
	if f.group != "" && f.group != "hour" && f.group != "day" && f.group != "week" {
		return fmt.Errorf("--group %q: want hour, day or week", f.group)
	}
	for _, d := range []struct{ name, v string }{{"from", f.from}, {"to", f.to}} {
		if _, err := parseReportTime(d.name, d.v, time.UTC); err != nil {
			return err
		}
	}
	if f.server != "" {
		for _, name := range []string{"data", "config"} {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("--%s and --server exclude each other: the server reads its own store", name)
			}
		}
		for _, name := range []string{"window", "half-life", "outcome"} {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("--%s is not supported with --server (the server applies its own)", name)
			}
		}
		if f.key == "" {
			return errors.New("--server needs --key (or NUDGE_ADMIN_KEY)")
		}
		u, err := url.Parse(f.server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--server %q: want a URL like http://127.0.0.1:8080", f.server)
		}
	}
	if cmd.Flags().Changed("budget") && !(f.budget > 0 && f.budget <= 1) {
		return fmt.Errorf("--budget %v: want a share in (0, 1]", f.budget)
	}
	return nil
}

// parseReportTime parses --from/--to: RFC 3339, or a day at midnight in loc; "" is zero.
func parseReportTime(flag, s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want 2006-01-02 or RFC 3339", flag, s)
}

func runReport(cmd *cobra.Command, a *app, f reportFlags) error {
	var r *report.Report
	var err error
	if f.server != "" {
		r, err = fetchReport(cmd, f)
	} else {
		r, err = buildLocalReport(cmd, a, f)
	}
	if err != nil {
		return err
	}
	return writeAtomic(a.stdout, f.out, func(w io.Writer) error {
		switch f.format {
		case "json":
			return r.WriteJSON(w)
		case "csv":
			sections := []string{f.section}
			if f.section == "all" {
				sections = report.Sections
			}
			for _, s := range sections {
				if err := r.WriteCSV(w, s); err != nil {
					return err
				}
			}
			return nil
		}
		return r.WriteText(w)
	})
}

// buildLocalReport opens the store and the configuration as nudge train does and builds the
// report in process.
func buildLocalReport(cmd *cobra.Command, a *app, f reportFlags) (*report.Report, error) {
	ctx := cmd.Context()
	if _, err := os.Stat(f.data); err != nil {
		return nil, &exitError{2, fmt.Errorf("--data %s: %w", f.data, err)}
	}
	ls, closeFn, err := openLearnSite(ctx, a, f.data, f.config, f.site, f.logLevel)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	loc := ls.site.Location()
	q := report.Query{Site: ls.site.ID, Group: f.group, Window: f.window, HalfLife: f.halfLife, Outcome: f.outcome}
	if q.From, err = parseReportTime("from", f.from, loc); err != nil {
		return nil, &exitError{2, err}
	}
	if q.To, err = parseReportTime("to", f.to, loc); err != nil {
		return nil, &exitError{2, err}
	}
	if cmd.Flags().Changed("threshold") {
		q.Threshold = &f.threshold
	}
	if cmd.Flags().Changed("budget") {
		q.Budget = &f.budget
	}
	r, err := report.Build(ctx, ls.st, ls.site, q)
	if errors.Is(err, report.ErrQuery) {
		return nil, &exitError{2, err}
	}
	return r, err
}

// fetchReport gets the report as JSON from a running server's admin API.
func fetchReport(cmd *cobra.Command, f reportFlags) (*report.Report, error) {
	ctx := cmd.Context()
	v := url.Values{"format": {"json"}}
	for name, val := range map[string]string{"site": f.site, "from": f.from, "to": f.to, "group": f.group} {
		if val != "" {
			v.Set(name, val)
		}
	}
	for name, val := range map[string]float64{"threshold": f.threshold, "budget": f.budget} {
		if cmd.Flags().Changed(name) {
			v.Set(name, strconv.FormatFloat(val, 'g', -1, 64))
		}
	}
	rm := &remoteModels{base: strings.TrimRight(f.server, "/"), key: f.key, client: &http.Client{Timeout: f.timeout}}
	var r report.Report
	if err := rm.call(ctx, http.MethodGet, "/v1/report?"+v.Encode(), nil, &r, nil); err != nil {
		return nil, err
	}
	if r.Version != report.FormatVersion {
		return nil, fmt.Errorf("server: report format version %d, this nudge reads %d", r.Version, report.FormatVersion)
	}
	return &r, nil
}

// writeAtomic runs write into stdout, or into a temporary file next to path that is renamed
// to path only when everything was written: a failure leaves nothing half-written.
func writeAtomic(stdout io.Writer, path string, write func(io.Writer) error) error {
	if path == "" {
		var buf bytes.Buffer // a failure half-way prints nothing either
		if err := write(&buf); err != nil {
			return err
		}
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	done = true
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}
