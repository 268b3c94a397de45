package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
	"github.com/nudgehq/nudge/training/uplift"
)

// Sentinel errors.
var (
	// ErrSchemaMismatch: a model's feature schema fingerprint is not the live schema's.
	ErrSchemaMismatch = errors.New("pipeline: model feature schema does not match the live schema")
	// ErrNoData: too few examples (or a single class) to fit a model.
	ErrNoData = errors.New("pipeline: not enough training examples")
	// ErrOptions: invalid options.
	ErrOptions = errors.New("pipeline: invalid options")
)

// Model kinds in the registry.
const (
	KindPropensity = "propensity"
	KindUplift     = "uplift"
)

// Defaults applied by Train.
const (
	DefaultWindow       = 24 * time.Hour
	DefaultTestFraction = 0.2
	DefaultBootstrap    = 200
	// MinUpliftRows is the fewest usable logged decisions, and MinArmRows the fewest per arm,
	// for which Train fits an uplift model.
	MinUpliftRows = 200
	MinArmRows    = 20
)

// DefaultAfterEvents are the propensity decision points: after the 3rd, 6th and 10th event.
var DefaultAfterEvents = []int{3, 6, 10}

// Options configures Train.
type Options struct {
	Site     *config.Site
	Schema   *features.Schema
	From, To int64         // Unix ms; 0 = everything (sessions that started in [From, To))
	Window   time.Duration // label window after a decision point (default 24h)
	// AfterEvents: propensity decision points after the n-th event of a session (default 3, 6,
	// 10), plus every logged decision.
	AfterEvents   []int
	Learner       string // "logistic" | "gbdt" | "auto" (default: both, keep the better test AUC)
	UpliftLearner string // "t" | "x" | "to" | "auto" (default: all three, keep the best holdout SNIPS)
	// NoUplift skips the uplift model even when decisions are logged.
	NoUplift     bool
	TestFraction float64 // share of the latest rows held out for evaluation (default 0.2)
	// Refit refits the chosen learners on all rows after the holdout evaluation; the
	// registered artifact is the refit, the metrics stay the holdout's.
	Refit     bool
	Bootstrap int // bootstrap replicates for the uplift intervals and OPE (default 200)
	// UpliftBase overrides the uplift learners' base trees (nil: 200 trees, learning rate 0.05,
	// depth 3, 70% row subsample, leaves of at least rows/40 rows clamped to [20, 200]:
	// strongly regularised, since an uplift is a small difference of two noisy estimates).
	UpliftBase *training.GBDTOptions
	Seed       uint64
	Note       string
	Progress   func(stage string, done, total int)
	Now        func() time.Time
}

// Result is what Train registered.
type Result struct {
	Propensity *store.ModelRecord
	Uplift     *store.ModelRecord // nil if too few logged decisions
	Report     string
	// PropensityEval and UpliftEval are the holdout evaluations of every learner tried.
	PropensityEval []LearnerEval
	UpliftEval     []UpliftEval
	Skipped        map[string]int // decision points left out, by reason
	Sessions       int
	Decisions      int
}

// LearnerEval is one propensity learner's holdout evaluation.
type LearnerEval struct {
	Learner    string
	Metrics    training.Metrics
	Importance []training.Importance
	Fit        time.Duration
}

// UpliftEval is one uplift learner's holdout evaluation.
type UpliftEval struct {
	Learner string
	Arms    []uplift.ArmEval
	OPE     *uplift.Comparison // greedy policy vs the logging policy on the holdout
	Fit     time.Duration
}

func (o *Options) defaults() error {
	if o.Site == nil || o.Schema == nil {
		return fmt.Errorf("%w: Site and Schema are required", ErrOptions)
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.AfterEvents == nil {
		o.AfterEvents = DefaultAfterEvents
	}
	if o.Learner == "" {
		o.Learner = "auto"
	}
	if o.UpliftLearner == "" {
		o.UpliftLearner = "auto"
	}
	switch o.Learner {
	case "auto", "logistic", "gbdt":
	default:
		return fmt.Errorf("%w: learner %q: want auto, logistic or gbdt", ErrOptions, o.Learner)
	}
	switch o.UpliftLearner {
	case "auto", "t", "x", "to":
	default:
		return fmt.Errorf("%w: uplift learner %q: want auto, t, x or to", ErrOptions, o.UpliftLearner)
	}
	if o.TestFraction == 0 {
		o.TestFraction = DefaultTestFraction
	}
	if o.TestFraction <= 0 || o.TestFraction >= 1 {
		return fmt.Errorf("%w: test fraction %v not in (0, 1)", ErrOptions, o.TestFraction)
	}
	if o.Bootstrap == 0 {
		o.Bootstrap = DefaultBootstrap
	}
	if o.Progress == nil {
		o.Progress = func(string, int, int) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Train builds the point-in-time examples, fits and evaluates the propensity model (and the
// uplift model when enough decisions are logged) on a time-ordered holdout, and registers
// them (not promoted).
func Train(ctx context.Context, st *store.Store, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	ex, err := buildExamples(ctx, st, opts.Site, opts.Schema, scanRange{
		from: opts.From, to: opts.To, window: opts.Window.Milliseconds(),
		afterEvent: opts.AfterEvents, uplift: !opts.NoUplift,
	}, opts.Progress)
	if err != nil {
		return nil, err
	}
	res := &Result{Skipped: ex.skipped, Sessions: ex.sessions, Decisions: ex.decisions}
	var rep strings.Builder
	fmt.Fprintf(&rep, "site %s: %d sessions, %d logged decisions read; label: macro conversion %q within %s\n",
		opts.Site.ID, ex.sessions, ex.decisions, opts.Schema.Spec().MacroConversion, opts.Window)
	if len(ex.skipped) > 0 {
		keys := make([]string, 0, len(ex.skipped))
		for k := range ex.skipped {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(&rep, "left out:")
		for _, k := range keys {
			fmt.Fprintf(&rep, " %s %d;", k, ex.skipped[k])
		}
		fmt.Fprintln(&rep)
	}

	rec, evals, err := trainPropensity(ctx, st, &opts, ex.prop, &rep)
	if err != nil {
		return nil, err
	}
	res.Propensity, res.PropensityEval = rec, evals

	if !opts.NoUplift {
		urec, uevals, err := trainUplift(ctx, st, &opts, ex, &rep)
		if err != nil {
			return nil, err
		}
		res.Uplift, res.UpliftEval = urec, uevals
	}
	res.Report = rep.String()
	return res, nil
}

// Datasets builds the point-in-time training sets Train would fit (propensity rows at every
// decision point; uplift rows at the logged decisions, with T, Arms, P and TS) without
// fitting anything, for export (table.ExportCSV) and analysis elsewhere.
func Datasets(ctx context.Context, st *store.Store, opts Options) (propensity, upliftRows *training.Dataset, err error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	ex, err := buildExamples(ctx, st, opts.Site, opts.Schema, scanRange{
		from: opts.From, to: opts.To, window: opts.Window.Milliseconds(),
		afterEvent: opts.AfterEvents, uplift: !opts.NoUplift,
	}, opts.Progress)
	if err != nil {
		return nil, nil, err
	}
	return ex.prop, ex.upl, nil
}

// gbdtOptions are the propensity trees' hyperparameters.
func gbdtOptions(seed uint64) training.GBDTOptions {
	// the settings that matched xgboost on the UCI table (training package doc)
	return training.GBDTOptions{Trees: 500, LearningRate: 0.05, MaxDepth: 4, MinLeaf: 20, EarlyStop: 30, Seed: seed}
}

// upliftBaseOptions are the uplift learners' base trees.
func upliftBaseOptions(seed uint64) training.GBDTOptions {
	return training.GBDTOptions{Trees: 200, LearningRate: 0.05, MaxDepth: 3, MinLeaf: 200, Subsample: 0.7, Seed: seed}
}

func gbdtParams(o training.GBDTOptions) map[string]string {
	return map[string]string{
		"trees": strconv.Itoa(o.Trees), "learning_rate": fmtF(o.LearningRate), "max_depth": strconv.Itoa(o.MaxDepth),
		"min_leaf": strconv.Itoa(o.MinLeaf), "early_stop": strconv.Itoa(o.EarlyStop), "seed": strconv.FormatUint(o.Seed, 10),
	}
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// propensityLearner returns a named learner and its hyperparameters.
func propensityLearner(name string, opts *Options) (training.Learner, map[string]string) {
	switch name {
	case "logistic":
		return training.NewLogistic(training.LogisticOptions{}), map[string]string{"l2": "1", "max_iter": "200"}
	default:
		g := gbdtOptions(opts.Seed)
		trees := g.Trees
		g.Progress = func(round int, _, _ float64) { opts.Progress("fit gbdt", round+1, trees) }
		p := gbdtParams(g)
		p["calibration"] = model.Platt
		return training.NewCalibrated(training.NewGBDT(g), training.CalibrationOptions{Method: model.Platt, Seed: opts.Seed}), p
	}
}

func trainPropensity(ctx context.Context, st *store.Store, opts *Options, ds *training.Dataset, rep io.Writer) (*store.ModelRecord, []LearnerEval, error) {
	pos := 0.0
	for _, y := range ds.Y {
		pos += y
	}
	if ds.N() < 20 || pos == 0 || pos == float64(ds.N()) {
		return nil, nil, fmt.Errorf("%w: %d propensity examples, %.0f positive (need at least 20 with both classes)", ErrNoData, ds.N(), pos)
	}
	train, test, err := training.TimeSplit(ds, opts.TestFraction)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w", err)
	}
	names := []string{opts.Learner}
	if opts.Learner == "auto" {
		names = []string{"logistic", "gbdt"}
	}
	fmt.Fprintf(rep, "\npropensity: %d decision points (%.1f%% positive); time-ordered holdout: train %d, test %d (from %s)\n",
		ds.N(), 100*pos/float64(ds.N()), train.N(), test.N(), fmtTS(test.TS[0]))
	var evals []LearnerEval
	var models []model.Binary
	best := -1
	for _, name := range names {
		l, _ := propensityLearner(name, opts)
		opts.Progress("fit "+name, 0, 0)
		m, met, dur, err := training.Holdout(ctx, l, train, nil, test)
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: fit %s: %w", name, err)
		}
		opts.Progress("evaluate "+name, 1, 1)
		imp, ok := training.GainImportance(m)
		if !ok {
			if imp, err = training.PermutationImportance(ctx, m, test, 1, opts.Seed); err != nil {
				return nil, nil, fmt.Errorf("pipeline: importance: %w", err)
			}
		}
		evals = append(evals, LearnerEval{Learner: l.Name(), Metrics: met, Importance: imp, Fit: dur})
		models = append(models, m)
		if best < 0 || met.AUC > evals[best].Metrics.AUC {
			best = len(evals) - 1
		}
	}
	tw := tabwriter.NewWriter(rep, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "learner\tauc\tpr_auc\tlog_loss\tbrier\tfit_s\t")
	for _, e := range evals {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.2f\t\n", e.Learner, e.Metrics.AUC, e.Metrics.PRAUC, e.Metrics.LogLoss, e.Metrics.Brier, e.Fit.Seconds())
	}
	tw.Flush()
	chosen := evals[best]
	fmt.Fprintf(rep, "chosen: %s (best test AUC)\n", chosen.Learner)
	if err := training.WriteMetrics(rep, chosen.Learner+" on the holdout", chosen.Metrics); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(rep, "importance (%s):", importanceKind(models[best]))
	for i, im := range chosen.Importance {
		if i == 10 {
			break
		}
		fmt.Fprintf(rep, " %s %.3f;", im.Feature, im.Value)
	}
	fmt.Fprintln(rep)

	m := models[best]
	l, params := propensityLearner(names[best], opts)
	if opts.Refit {
		opts.Progress("refit "+names[best], 0, 0)
		if m, err = l.Fit(ctx, ds, nil); err != nil {
			return nil, nil, fmt.Errorf("pipeline: refit %s: %w", names[best], err)
		}
	}
	params["window"] = opts.Window.String()
	params["after_events"] = joinInts(opts.AfterEvents)
	params["test_fraction"] = fmtF(opts.TestFraction)
	params["refit"] = strconv.FormatBool(opts.Refit)

	metrics := map[string]float64{
		"auc": chosen.Metrics.AUC, "pr_auc": chosen.Metrics.PRAUC, "log_loss": chosen.Metrics.LogLoss,
		"brier": chosen.Metrics.Brier, "test_rows": float64(test.N()), "train_rows": float64(train.N()),
		"positive_rate": pos / float64(ds.N()),
	}
	for i, im := range chosen.Importance {
		if i == 20 {
			break
		}
		metrics["importance."+im.Feature] = im.Value
	}
	info := model.Describe(m)
	info.Learner = chosen.Learner
	info.Params, _ = json.Marshal(params)
	info.Metrics, err = json.Marshal(struct {
		Holdout    training.Metrics      `json:"holdout"`
		Importance []training.Importance `json:"importance"`
	}{chosen.Metrics, chosen.Importance})
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: metrics: %w", err)
	}
	info.Created = opts.Now().UTC()
	info.Note = opts.Note
	var buf bytes.Buffer
	if err := model.WriteArtifact(&buf, model.Artifact{Info: info, Model: m}); err != nil {
		return nil, nil, fmt.Errorf("pipeline: write artifact: %w", err)
	}
	lo, hi := tsRange(ds)
	rec := &store.ModelRecord{
		Site: opts.Site.ID, Kind: KindPropensity, Learner: learnerName(names[best]), Params: params,
		Fingerprint: opts.Schema.Fingerprint, Features: slices.Clone(opts.Schema.Names),
		TrainFrom: lo, TrainTo: hi, Rows: ds.N(), Metrics: metrics, CreatedAt: opts.Now().UnixMilli(),
		Note: opts.Note, Artifact: buf.Bytes(),
	}
	if err := st.PutModel(ctx, rec); err != nil {
		return nil, nil, fmt.Errorf("pipeline: register propensity model: %w", err)
	}
	fmt.Fprintf(rep, "registered propensity model version %d (%s)\n", rec.Version, rec.Learner)
	return rec, evals, nil
}

func learnerName(name string) string {
	if name == "gbdt" {
		return "gbdt+platt"
	}
	return name
}

func importanceKind(m model.Binary) string {
	if _, ok := training.GainImportance(m); ok {
		return "split gain share"
	}
	return "test AUC drop when permuted"
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func fmtTS(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04") }

// upliftLearner returns the named uplift learner on gradient-boosted trees.
func upliftLearner(name string, seed uint64, rows int, override *training.GBDTOptions, eligible func([]float64, int) bool) (uplift.Learner, string, map[string]string) {
	g := upliftBaseOptions(seed)
	// Leaves of at least rows/40 rows, between 20 and 200: coarse enough on large logs that
	// the difference of two fits is not noise, fine enough that a small log still splits.
	g.MinLeaf = min(200, max(20, rows/40))
	if override != nil {
		g = *override
		g.Seed = seed
	}
	base := training.NewGBDT(g)
	p := gbdtParams(g)
	switch name {
	case "x":
		return uplift.XLearner{Outcome: base, Eligible: eligible}, "x-learner/gbdt", p
	case "to":
		p["min_p"] = "0.01"
		return uplift.TransformedOutcome{Regressor: uplift.ViaClassifier{Learner: base}, Baseline: base}, "transformed-outcome/gbdt", p
	default:
		return uplift.TLearner{Base: base}, "t-learner/gbdt", p
	}
}

// timeOrder returns row indices sorted by TS (stable) and the cut between train and test, as
// training.TimeSplit does (ties stay together).
func timeOrder(ts []int64, testFrac float64) ([]int, int, error) {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case ts[a] < ts[b]:
			return -1
		case ts[a] > ts[b]:
			return 1
		}
		return 0
	})
	cut := int(math.Round(float64(len(idx)) * (1 - testFrac)))
	for cut > 0 && cut < len(idx) && ts[idx[cut]] == ts[idx[cut-1]] {
		cut++
	}
	if cut <= 0 || cut >= len(idx) {
		return nil, 0, fmt.Errorf("%w: %d rows cannot be split at %v", ErrNoData, len(idx), testFrac)
	}
	return idx, cut, nil
}

// valuePolicy is the site's economics: macro value, intervention costs, threshold.
type valuePolicy struct {
	value     float64
	cost      []float64 // per arm, 0 for control
	threshold float64
}

func siteValue(site *config.Site) valuePolicy {
	v := valuePolicy{value: site.Macro.Value, cost: make([]float64, len(site.Interventions)+1), threshold: site.Policy.Threshold}
	for k, iv := range site.Interventions {
		v.cost[k+1] = iv.Cost
	}
	return v
}

// greedy returns, for each row, the eligible arm with the highest uplift x value - cost when
// above the threshold (and positive), else 0. pred is uplift.Predictions' layout.
func (v valuePolicy) greedy(pred []float64, eligible [][]bool) []int {
	k := len(v.cost) - 1
	arms := make([]int, len(eligible))
	for i, el := range eligible {
		best, bestEV := 0, math.Max(v.threshold, 0)
		for a := 1; a <= k; a++ {
			if !el[a] {
				continue
			}
			if ev := pred[i*k+a-1]*v.value - v.cost[a]; ev > bestEV {
				best, bestEV = a, ev
			}
		}
		arms[i] = best
	}
	return arms
}

// logged returns the OPE rows of an uplift dataset: reward = Y x value - cost of the arm.
func (v valuePolicy) logged(ds *training.Dataset) []uplift.Logged {
	rows := make([]uplift.Logged, ds.N())
	for i := range rows {
		rows[i] = uplift.Logged{Arm: ds.T[i], P: ds.P[i], Reward: ds.Y[i]*v.value - v.cost[ds.T[i]]}
	}
	return rows
}

func trainUplift(ctx context.Context, st *store.Store, opts *Options, ex *examples, rep io.Writer) (*store.ModelRecord, []UpliftEval, error) {
	ds := ex.upl
	arms := ds.Arms
	counts := make([]int, len(arms))
	for _, t := range ds.T {
		counts[t]++
	}
	fmt.Fprintf(rep, "\nuplift: %d logged decisions with outcome (arms:", ds.N())
	for k, a := range arms {
		fmt.Fprintf(rep, " %s %d", a, counts[k])
	}
	fmt.Fprintln(rep, ")")
	if ds.N() < MinUpliftRows || slices.Min(counts) < MinArmRows {
		fmt.Fprintf(rep, "no uplift model: need at least %d decisions and %d per arm\n", MinUpliftRows, MinArmRows)
		return nil, nil, nil
	}
	idx, cut, err := timeOrder(ds.TS, opts.TestFraction)
	if err != nil {
		return nil, nil, err
	}
	train, test := ds.Subset(idx[:cut]), ds.Subset(idx[cut:])
	testEl := make([][]bool, len(idx)-cut)
	for j, i := range idx[cut:] {
		testEl[j] = ex.eligible[i]
	}
	vp := siteValue(opts.Site)
	testRows := vp.logged(test)
	fmt.Fprintf(rep, "time-ordered holdout: train %d, test %d (from %s); value %.2f per conversion, costs %v\n",
		train.N(), test.N(), fmtTS(test.TS[0]), vp.value, vp.cost[1:])

	names := []string{opts.UpliftLearner}
	if opts.UpliftLearner == "auto" {
		names = []string{"t", "x", "to"}
	}
	elig := eligibleFunc(opts.Site, opts.Schema)
	var evals []UpliftEval
	var models []uplift.Model
	best := -1
	for _, name := range names {
		l, lname, _ := upliftLearner(name, opts.Seed, train.N(), opts.UpliftBase, elig)
		opts.Progress("fit "+lname, 0, 0)
		start := time.Now()
		m, err := l.Fit(ctx, train)
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: fit %s: %w", lname, err)
		}
		dur := time.Since(start)
		opts.Progress("evaluate "+lname, 0, 1)
		ae, err := uplift.EvaluateModel(m, test, uplift.EvalOptions{Bootstrap: opts.Bootstrap, Seed: opts.Seed, IPS: true, CurvePoints: 20, Eligible: elig})
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: evaluate %s: %w", lname, err)
		}
		pred, err := uplift.Predictions(m, test)
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: predict %s: %w", lname, err)
		}
		greedy := vp.greedy(pred, testEl)
		cmp, err := uplift.Compare(testRows, len(arms), uplift.Deterministic(func(i int) int { return greedy[i] }), nil,
			uplift.OPEOptions{Bootstrap: opts.Bootstrap, Seed: opts.Seed})
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: off-policy estimate %s: %w", lname, err)
		}
		opts.Progress("evaluate "+lname, 1, 1)
		evals = append(evals, UpliftEval{Learner: lname, Arms: ae, OPE: cmp, Fit: dur})
		models = append(models, m)
		if best < 0 || cmp.Candidate.SNIPS.Value > evals[best].OPE.Candidate.SNIPS.Value {
			best = len(evals) - 1
		}
	}
	writeUpliftTable(rep, evals)
	chosen := evals[best]
	fmt.Fprintf(rep, "chosen: %s (best holdout SNIPS value of its greedy policy)\n", chosen.Learner)

	m := models[best]
	pred, err := uplift.Predictions(m, test)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: predict %s: %w", chosen.Learner, err)
	}
	thr, err := budgetThreshold(rep, opts, vp, pred, testEl, testRows, len(arms))
	if err != nil {
		return nil, nil, err
	}
	l, lname, params := upliftLearner(names[best], opts.Seed, ds.N(), opts.UpliftBase, elig)
	if opts.Refit {
		opts.Progress("refit "+lname, 0, 0)
		if m, err = l.Fit(ctx, ds); err != nil {
			return nil, nil, fmt.Errorf("pipeline: refit %s: %w", lname, err)
		}
	}
	params["window"] = opts.Window.String()
	params["test_fraction"] = fmtF(opts.TestFraction)
	params["refit"] = strconv.FormatBool(opts.Refit)
	params["bootstrap"] = strconv.Itoa(opts.Bootstrap)
	metrics := map[string]float64{"test_rows": float64(test.N()), "train_rows": float64(train.N()),
		"policy_threshold": thr.Threshold, "policy_threshold_share": thr.Share, "policy_threshold_snips": thr.SNIPS}
	for _, a := range chosen.Arms {
		for k, v := range map[string]float64{
			"qini": a.Qini, "qini_lo": a.Lo.Qini, "qini_hi": a.Hi.Qini, "auuc": a.AUUC, "auuc_random": a.AUUCRandom,
			"auuc_lo": a.Lo.AUUC, "auuc_hi": a.Hi.AUUC, "ate": a.ATE,
			"uplift_at_10": a.UpliftAt10, "uplift_at_20": a.UpliftAt20, "uplift_at_30": a.UpliftAt30,
		} {
			metrics[k+"."+a.Arm] = v
		}
	}
	o := chosen.OPE
	for k, v := range map[string]float64{
		"ope_ips": o.Candidate.IPS.Value, "ope_snips": o.Candidate.SNIPS.Value, "ope_snips_lo": o.Candidate.SNIPS.Lo,
		"ope_snips_hi": o.Candidate.SNIPS.Hi, "ope_logging": o.Current.SNIPS.Value, "ope_diff_snips": o.DiffSNIPS.Value,
		"ope_diff_snips_lo": o.DiffSNIPS.Lo, "ope_diff_snips_hi": o.DiffSNIPS.Hi, "ope_ess": o.Candidate.ESS,
	} {
		metrics[k] = v
	}
	var buf bytes.Buffer
	if err := uplift.Write(&buf, m, uplift.DefaultCodec); err != nil {
		return nil, nil, fmt.Errorf("pipeline: write uplift artifact: %w", err)
	}
	lo, hi := tsRange(ds)
	rec := &store.ModelRecord{
		Site: opts.Site.ID, Kind: KindUplift, Learner: lname, Params: params,
		Fingerprint: opts.Schema.Fingerprint, Features: slices.Clone(opts.Schema.Names), Arms: slices.Clone(arms),
		TrainFrom: lo, TrainTo: hi, Rows: ds.N(), Metrics: metrics, CreatedAt: opts.Now().UnixMilli(),
		Note: opts.Note, Artifact: buf.Bytes(),
	}
	if err := st.PutModel(ctx, rec); err != nil {
		return nil, nil, fmt.Errorf("pipeline: register uplift model: %w", err)
	}
	fmt.Fprintf(rep, "registered uplift model version %d (%s)\n", rec.Version, rec.Learner)
	return rec, evals, nil
}

// writeUpliftTable prints one line per learner and arm, then each learner's off-policy value.
func writeUpliftTable(w io.Writer, evals []UpliftEval) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "learner\tarm\tqini\t95% CI\tauuc\t(random)\tuplift@10\t@20\t@30\tfit_s\t")
	for _, e := range evals {
		for _, a := range e.Arms {
			fmt.Fprintf(tw, "%s\t%s\t%.4f\t[%.4f, %.4f]\t%.4f\t%.4f\t%.3f\t%.3f\t%.3f\t%.2f\t\n", e.Learner, a.Arm, a.Qini, a.Lo.Qini, a.Hi.Qini,
				a.AUUC, a.AUUCRandom, a.UpliftAt10, a.UpliftAt20, a.UpliftAt30, e.Fit.Seconds())
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "off-policy value per decision on the holdout (greedy policy of the model vs the logging policy):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "learner\tIPS\tSNIPS\t95% CI\tlogging\tdiff SNIPS\t95% CI\tESS\t")
	for _, e := range evals {
		o := e.OPE
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t[%.3f, %.3f]\t%.3f\t%+.3f\t[%+.3f, %+.3f]\t%.0f\t\n", e.Learner, o.Candidate.IPS.Value,
			o.Candidate.SNIPS.Value, o.Candidate.SNIPS.Lo, o.Candidate.SNIPS.Hi, o.Current.SNIPS.Value,
			o.DiffSNIPS.Value, o.DiffSNIPS.Lo, o.DiffSNIPS.Hi, o.Candidate.ESS)
	}
	tw.Flush()
}
