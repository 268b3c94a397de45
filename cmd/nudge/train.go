package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/training"
	"github.com/nudgehq/nudge/training/pipeline"
	"github.com/nudgehq/nudge/training/table"
)

// trainFlags are the flags of `nudge train`.
type trainFlags struct {
	data, config, site  string
	learner, upLearner  string
	window              time.Duration
	from, to            string
	afterEvents         []int
	testFraction        float64
	promote, compare    bool
	refit               bool
	noUplift            bool
	seed                uint64
	bootstrap           int
	note                string
	tablePath, label    string
	weight, treatment   string
	control, timeCol    string
	categorical, ignore []string
	folds               int
	out                 string
	export              string
	logLevel            string
}

func newTrainCmd(a *app) *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train, evaluate and register propensity and uplift models",
		Long: `Train models and register them in the model registry (not promoted unless --promote).

From the event log (default): training examples are built point in time — each session after
its n-th event (--after-events) and at every logged decision, features replayed with the same
code serving uses as of that moment, label = the site's macro conversion by the same visitor
within --window. Propensity learners are evaluated on a time-ordered holdout (the latest
--test-fraction of the rows): ROC AUC, PR AUC, log loss, Brier, a calibration table and
per-feature importance. With enough logged decisions an uplift model is trained too (arms:
control, then the site's interventions) and evaluated with Qini, AUUC and uplift at
10/20/30% with bootstrap intervals, and an off-policy estimate (IPS, SNIPS) of its greedy
policy against the logging policy. The tables are printed and stored with the models.

From a table (--table FILE.csv --label COL): a data scientist's own CSV; K-fold
cross-validation (row i in fold i % K). With --treatment, uplift learners and Qini/AUUC.
Table models are registered with a fingerprint derived from the table's column names
("table-<hash>"), so they can be scored with nudge predict but never promoted for serving.
--out also writes the artifact to a file.

The server must not be running on the same --data directory (Badger allows one process); to
train inside a running server use its admin API (POST /v1/train).

Environment: NUDGE_DATA, NUDGE_CONFIG, NUDGE_SITE, NUDGE_LOG_LEVEL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(a, cmd.Flags(), map[string]string{
				"data": "NUDGE_DATA", "config": "NUDGE_CONFIG", "site": "NUDGE_SITE", "log-level": "NUDGE_LOG_LEVEL",
			}); err != nil {
				return &exitError{2, err}
			}
			if f.tablePath != "" {
				return runTrainTable(cmd.Context(), a, f)
			}
			return runTrain(cmd.Context(), a, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", "./nudge-data", "data directory (Badger)")
	fs.StringVar(&f.config, "config", "", "site configuration file (YAML); none means the demo site")
	fs.StringVar(&f.site, "site", "", "site to train for (default: the config's only site)")
	fs.StringVar(&f.learner, "learner", "auto", "propensity learner: auto (logistic and gbdt, keep the better), logistic or gbdt")
	fs.StringVar(&f.upLearner, "uplift-learner", "auto", "uplift learner: auto (all, keep the best), t, x or to")
	fs.DurationVar(&f.window, "window", pipeline.DefaultWindow, "label window after a decision point")
	fs.StringVar(&f.from, "from", "", "first day of sessions to use (2006-01-02 or RFC 3339, UTC)")
	fs.StringVar(&f.to, "to", "", "end (exclusive) of sessions to use")
	fs.IntSliceVar(&f.afterEvents, "after-events", pipeline.DefaultAfterEvents, "decision points after the n-th event of each session")
	fs.Float64Var(&f.testFraction, "test-fraction", pipeline.DefaultTestFraction, "share of the latest rows held out for evaluation")
	fs.BoolVar(&f.promote, "promote", false, "promote the trained models (refused on a feature schema mismatch)")
	fs.BoolVar(&f.compare, "compare", false, "fit every learner and print them side by side (golearn is not offered: see the training package doc)")
	fs.BoolVar(&f.refit, "refit", true, "refit the chosen learner on all rows after the holdout evaluation")
	fs.BoolVar(&f.noUplift, "no-uplift", false, "train the propensity model only")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed (subsampling, bootstrap)")
	fs.IntVar(&f.bootstrap, "bootstrap", pipeline.DefaultBootstrap, "bootstrap replicates for the uplift intervals")
	fs.StringVar(&f.note, "note", "", "a note stored with the models")
	fs.StringVar(&f.tablePath, "table", "", "train on this CSV table instead of the event log")
	fs.StringVar(&f.label, "label", "", "table: the label column (0/1, true/false, yes/no)")
	fs.StringVar(&f.weight, "weight", "", "table: the row weight column")
	fs.StringVar(&f.treatment, "treatment", "", "table: the treatment column (arm names); fits uplift learners")
	fs.StringVar(&f.control, "control", "", "table: the control arm's name (default \"control\", else \"0\")")
	fs.StringVar(&f.timeCol, "time", "", "table: a decision time column (Unix ms or RFC 3339)")
	fs.StringSliceVar(&f.categorical, "categorical", nil, "table: columns to treat as categorical")
	fs.StringSliceVar(&f.ignore, "ignore", nil, "table: columns to skip")
	fs.IntVar(&f.folds, "folds", 5, "table: K of the K-fold cross-validation")
	fs.StringVar(&f.export, "export", "", "write the point-in-time training set to this CSV (and the uplift set to <name>-uplift.csv) instead of training")
	fs.StringVarP(&f.out, "out", "o", "", "also write the model (record and artifact, the nudge models export format) to this file")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

// parseDay parses a --from/--to value: a date (UTC midnight) or RFC 3339; "" is 0.
func parseDay(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("--%s %q: want 2006-01-02 or RFC 3339", flag, s)
}

// learnSite is a site opened for the learn commands.
type learnSite struct {
	cfg    *config.Config
	site   *config.Site
	schema *features.Schema
	st     *store.Store
}

// openLearnSite loads the configuration, picks the site and opens the store.
func openLearnSite(ctx context.Context, a *app, data, cfgPath, siteID, logLevel string) (*learnSite, func(), error) {
	log, err := newLogger(a.stderr, logLevel, "text")
	if err != nil {
		return nil, nil, &exitError{2, err}
	}
	cfg, err := loadConfig(cfgPath, nil)
	if err != nil {
		return nil, nil, &exitError{2, err}
	}
	if siteID == "" {
		if len(cfg.Sites) != 1 {
			return nil, nil, &exitError{2, errors.New("--site is required: the configuration has several sites")}
		}
		siteID = cfg.Sites[0].ID
	}
	site, ok := cfg.Site(siteID)
	if !ok {
		return nil, nil, &exitError{2, fmt.Errorf("--site %q: no such site in %s", siteID, cfg.Path)}
	}
	sc, err := features.NewSchema(site.FeatureSpec())
	if err != nil {
		return nil, nil, &exitError{2, fmt.Errorf("site %q: feature schema: %w", site.ID, err)}
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, nil, fmt.Errorf("data directory: %w", err)
	}
	st, err := openStore(ctx, cfg, storeOptions{dir: data}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("open the store at %s (is a server running on it? use --server): %w", data, err)
	}
	closeFn := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := st.Close(cctx); cerr != nil {
			fmt.Fprintf(a.stderr, "nudge: close store: %v\n", cerr)
		}
	}
	return &learnSite{cfg: cfg, site: site, schema: sc, st: st}, closeFn, nil
}

// progressFunc returns a Progress callback: a bar per stage on a terminal, else a line per
// stage on stderr.
func progressFunc(w io.Writer) (func(stage string, done, total int), func()) {
	var bar *progressbar.ProgressBar
	var cur string
	term := isTerminal(w)
	finish := func() {
		if bar != nil {
			_ = bar.Finish()
			bar = nil
		}
	}
	return func(stage string, done, total int) {
		if stage != cur {
			finish()
			cur = stage
			if term {
				max := int64(total)
				if max <= 0 {
					max = -1
				}
				bar = progressbar.NewOptions64(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(stage),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionShowCount())
			} else {
				fmt.Fprintf(w, "train: %s\n", stage)
			}
		}
		if bar != nil {
			if total > 0 && int64(total) != bar.GetMax64() {
				bar.ChangeMax(total)
			}
			_ = bar.Set(done)
		}
	}, finish
}

func runTrain(ctx context.Context, a *app, f trainFlags) error {
	from, err := parseDay("from", f.from)
	if err != nil {
		return &exitError{2, err}
	}
	to, err := parseDay("to", f.to)
	if err != nil {
		return &exitError{2, err}
	}
	ls, closeFn, err := openLearnSite(ctx, a, f.data, f.config, f.site, f.logLevel)
	if err != nil {
		return err
	}
	defer closeFn()
	progress, finish := progressFunc(a.stderr)
	if f.export != "" {
		defer finish()
		return exportDatasets(ctx, a, ls, f, from, to, progress)
	}
	learner, upLearner := f.learner, f.upLearner
	if f.compare {
		learner, upLearner = "auto", "auto"
	}
	res, err := pipeline.Train(ctx, ls.st, pipeline.Options{
		Site: ls.site, Schema: ls.schema, From: from, To: to, Window: f.window, AfterEvents: f.afterEvents,
		Learner: learner, UpliftLearner: upLearner, NoUplift: f.noUplift, TestFraction: f.testFraction,
		Refit: f.refit, Bootstrap: f.bootstrap, Seed: f.seed, Note: f.note, Progress: progress,
	})
	finish()
	if err != nil {
		if errors.Is(err, pipeline.ErrOptions) {
			return &exitError{2, err}
		}
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprint(a.stdout, res.Report)
	if f.compare {
		fmt.Fprintln(a.stdout, "note: golearn is not offered as a comparison learner (the training package measured it as unsound here)")
	}
	if f.out != "" {
		if err := writeExport(f.out, res.Propensity); err != nil {
			return fmt.Errorf("train: --out: %w", err)
		}
		fmt.Fprintf(a.stdout, "wrote the propensity model (record and artifact) to %s\n", f.out)
	}
	if f.promote {
		for _, rec := range []*store.ModelRecord{res.Propensity, res.Uplift} {
			if rec == nil {
				continue
			}
			rep, err := pipeline.Promote(ctx, ls.st, ls.site.ID, rec.Version, ls.schema, time.Now(), pipeline.WithSite(ls.site))
			if err != nil {
				return fmt.Errorf("train: promote: %w", err)
			}
			fmt.Fprint(a.stdout, rep.Text)
		}
	}
	return nil
}

func runTrainTable(ctx context.Context, a *app, f trainFlags) error {
	if f.label == "" {
		return &exitError{2, errors.New("--table needs --label")}
	}
	ds, enc, err := table.ReadFile(f.tablePath, table.Options{Label: f.label, Weight: f.weight, Treatment: f.treatment,
		Control: f.control, Time: f.timeCol, Categorical: f.categorical, Ignore: f.ignore})
	if err != nil {
		return &exitError{1, fmt.Errorf("train: %w", err)}
	}
	ls, closeFn, err := openLearnSite(ctx, a, f.data, f.config, f.site, f.logLevel)
	if err != nil {
		return err
	}
	defer closeFn()
	progress, finish := progressFunc(a.stderr)
	learner, upLearner := f.learner, f.upLearner
	if f.compare {
		learner, upLearner = "auto", "auto"
	}
	res, err := pipeline.TrainTable(ctx, ds, enc, pipeline.TableOptions{Site: ls.site.ID, Folds: f.folds, Learner: learner,
		UpliftLearner: upLearner, Bootstrap: f.bootstrap, Seed: f.seed, Source: f.tablePath, Progress: progress})
	finish()
	if err != nil {
		if errors.Is(err, pipeline.ErrOptions) {
			return &exitError{2, err}
		}
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprint(a.stdout, res.Report)
	if f.note != "" {
		res.Record.Note = f.note
	}
	if err := ls.st.PutModel(ctx, res.Record); err != nil {
		return fmt.Errorf("train: register: %w", err)
	}
	fmt.Fprintf(a.stdout, "registered %s model version %d (%s), fingerprint %s (from the table's columns: not promotable for serving)\n",
		res.Record.Kind, res.Record.Version, res.Record.Learner, res.Record.Fingerprint)
	if f.out != "" {
		if err := writeExport(f.out, res.Record); err != nil {
			return fmt.Errorf("train: --out: %w", err)
		}
		fmt.Fprintf(a.stdout, "wrote the model (record and artifact, as nudge models export does) to %s\n", f.out)
	}
	if f.promote {
		return &exitError{1, errors.New("train: a table model cannot be promoted (its features are not the site's)")}
	}
	return nil
}

// writeExport writes a record as pipeline.Export does, via a temporary file and rename.
func writeExport(path string, rec *store.ModelRecord) error {
	tmp := path + ".tmp"
	file, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := pipeline.Export(file, rec); err != nil {
		file.Close()
		os.Remove(tmp)
		return err
	}
	if err := file.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// exportDatasets writes the point-in-time training sets as CSV (table.ExportCSV).
func exportDatasets(ctx context.Context, a *app, ls *learnSite, f trainFlags, from, to int64, progress func(string, int, int)) error {
	prop, upl, err := pipeline.Datasets(ctx, ls.st, pipeline.Options{Site: ls.site, Schema: ls.schema, From: from, To: to,
		Window: f.window, AfterEvents: f.afterEvents, NoUplift: f.noUplift, Progress: progress})
	if err != nil {
		return fmt.Errorf("train --export: %w", err)
	}
	write := func(path string, ds *training.Dataset) error {
		file, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := table.ExportCSV(file, ds, nil); err != nil {
			file.Close()
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "wrote %d rows x %d features to %s\n", ds.N(), ds.D(), path)
		return nil
	}
	if err := write(f.export, prop); err != nil {
		return fmt.Errorf("train --export: %w", err)
	}
	if upl != nil && upl.N() > 0 {
		path := strings.TrimSuffix(f.export, ".csv") + "-uplift.csv"
		if err := write(path, upl); err != nil {
			return fmt.Errorf("train --export: %w", err)
		}
	}
	return nil
}
