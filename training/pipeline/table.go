package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
	"github.com/nudgehq/nudge/training/table"
	"github.com/nudgehq/nudge/training/uplift"
)

// TableOptions configures TrainTable: a data scientist's own table (training/table).
type TableOptions struct {
	Site          string // registry site the record belongs to
	Folds         int    // K of the K-fold cross-validation (default 5; row i in fold i % K)
	Learner       string // "logistic" | "gbdt" | "auto" (both; keep the better mean AUC)
	UpliftLearner string // with a treatment column: "t" | "x" | "to" | "auto"
	Bootstrap     int    // uplift: bootstrap replicates of the pooled out-of-fold metrics (default 200)
	Seed          uint64
	Source        string // file name, recorded in the note
	Progress      func(stage string, done, total int)
	Now           func() time.Time
}

// TableResult is a table model, not yet registered.
type TableResult struct {
	Record *store.ModelRecord
	CV     []*training.CVResult // propensity learners
	Uplift []*uplift.CVResult   // uplift learners
	Report string
}

// TableFingerprint is the schema fingerprint of a model trained on an imported table:
// "table-" and the first 16 hex digits of the SHA-256 of its feature column names joined by
// newlines. It never equals a site's feature schema fingerprint, so such a model cannot be
// promoted for serving; it is for batch scoring (nudge predict) and comparison.
func TableFingerprint(names []string) string {
	h := sha256.Sum256([]byte(strings.Join(names, "\n")))
	return "table-" + hex.EncodeToString(h[:8])
}

// TrainTable cross-validates the learners on ds (K folds by row index), keeps the best, refits
// it on every row and returns the record to register. With a treatment column (ds.T) it fits
// uplift learners and reports Qini/AUUC; else propensity learners with AUC, PR AUC, log loss
// and Brier. enc's category levels are kept with the model (model.Info.Levels for
// propensity, Params["levels"] for uplift) so nudge predict codes new rows the same way.
func TrainTable(ctx context.Context, ds *training.Dataset, enc *table.Encoding, o TableOptions) (*TableResult, error) {
	if o.Folds == 0 {
		o.Folds = 5
	}
	if o.Folds < 2 {
		return nil, fmt.Errorf("%w: %d folds", ErrOptions, o.Folds)
	}
	if o.Learner == "" {
		o.Learner = "auto"
	}
	if o.UpliftLearner == "" {
		o.UpliftLearner = "auto"
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
	if ds.N() < 2*o.Folds {
		return nil, fmt.Errorf("%w: %d rows for %d folds", ErrNoData, ds.N(), o.Folds)
	}
	levels, _ := json.Marshal(enc.Levels())
	params := map[string]string{"folds": strconv.Itoa(o.Folds), "levels": string(levels), "seed": strconv.FormatUint(o.Seed, 10)}
	rec := &store.ModelRecord{Site: o.Site, Fingerprint: TableFingerprint(ds.Names), Features: slices.Clone(ds.Names),
		Rows: ds.N(), CreatedAt: o.Now().UnixMilli(), Note: "table " + o.Source, Params: params}
	if lo, hi := tsRange(ds); hi > 0 {
		rec.TrainFrom, rec.TrainTo = lo, hi
	}
	res := &TableResult{Record: rec}
	var rep strings.Builder
	if ds.T != nil {
		if err := tableUplift(ctx, ds, o, res, &rep); err != nil {
			return nil, err
		}
	} else if err := tablePropensity(ctx, ds, enc, o, res, &rep); err != nil {
		return nil, err
	}
	res.Report = rep.String()
	return res, nil
}

func tablePropensity(ctx context.Context, ds *training.Dataset, enc *table.Encoding, o TableOptions, res *TableResult, rep io.Writer) error {
	names := []string{o.Learner}
	if o.Learner == "auto" {
		names = []string{"logistic", "gbdt"}
	}
	popts := &Options{Seed: o.Seed, Progress: o.Progress}
	fmt.Fprintf(rep, "%d rows, %d features; %d-fold cross-validation (row i in fold i %% %d)\n", ds.N(), ds.D(), o.Folds, o.Folds)
	best := -1
	for _, name := range names {
		l, _ := propensityLearner(name, popts)
		o.Progress("cross-validate "+name, 0, o.Folds)
		cv, err := training.CrossValidate(ctx, l, ds, o.Folds)
		if err != nil {
			return fmt.Errorf("pipeline: cross-validate %s: %w", name, err)
		}
		res.CV = append(res.CV, cv)
		if best < 0 || cv.Mean.AUC > res.CV[best].Mean.AUC {
			best = len(res.CV) - 1
		}
	}
	if err := training.WriteCVTable(rep, res.CV...); err != nil {
		return err
	}
	chosen := res.CV[best]
	l, params := propensityLearner(names[best], popts)
	o.Progress("fit "+names[best]+" on all rows", 0, 0)
	m, err := l.Fit(ctx, ds, nil)
	if err != nil {
		return fmt.Errorf("pipeline: fit %s: %w", names[best], err)
	}
	imp, _ := training.GainImportance(m)
	fmt.Fprintf(rep, "chosen: %s (best mean AUC), refitted on all %d rows\n", chosen.Learner, ds.N())
	rec := res.Record
	rec.Kind, rec.Learner = KindPropensity, learnerName(names[best])
	for k, v := range params {
		rec.Params[k] = v
	}
	rec.Metrics = map[string]float64{"auc": chosen.Mean.AUC, "min_auc": chosen.MinAUC, "pr_auc": chosen.Mean.PRAUC,
		"log_loss": chosen.Mean.LogLoss, "brier": chosen.Mean.Brier}
	for i, im := range imp {
		if i == 20 {
			break
		}
		rec.Metrics["importance."+im.Feature] = im.Value
	}
	info := model.Describe(m)
	info.Levels = enc.Levels()
	info.Learner = chosen.Learner
	info.Params, _ = json.Marshal(params)
	info.Metrics, _ = json.Marshal(struct {
		CV         *training.CVResult    `json:"cv"`
		Importance []training.Importance `json:"importance,omitempty"`
	}{chosen, imp})
	info.Created = o.Now().UTC()
	info.Note = rec.Note
	var buf bytes.Buffer
	if err := model.WriteArtifact(&buf, model.Artifact{Info: info, Model: m}); err != nil {
		return fmt.Errorf("pipeline: write artifact: %w", err)
	}
	rec.Artifact = buf.Bytes()
	return nil
}

func tableUplift(ctx context.Context, ds *training.Dataset, o TableOptions, res *TableResult, rep io.Writer) error {
	names := []string{o.UpliftLearner}
	if o.UpliftLearner == "auto" {
		names = []string{"t", "x", "to"}
	}
	counts := make([]int, len(ds.Arms))
	for _, t := range ds.T {
		counts[t]++
	}
	fmt.Fprintf(rep, "%d rows, %d features, arms", ds.N(), ds.D())
	for k, a := range ds.Arms {
		fmt.Fprintf(rep, " %s %d", a, counts[k])
	}
	fmt.Fprintf(rep, "; %d-fold cross-validation, out-of-fold predictions pooled\n", o.Folds)
	best, bestQ := -1, math.Inf(-1)
	tw := tabwriter.NewWriter(rep, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "learner\tarm\tqini\t95% CI\tauuc\t(random)\tuplift@10\t@20\t@30\t")
	for i, name := range names {
		l, lname, _ := upliftLearner(name, o.Seed, ds.N(), nil, nil)
		o.Progress("cross-validate "+lname, 0, o.Folds)
		cv, err := uplift.CrossValidate(ctx, l, ds, uplift.CVOptions{Folds: o.Folds, Seed: o.Seed,
			Eval: uplift.EvalOptions{Bootstrap: o.Bootstrap, Seed: o.Seed, IPS: ds.P != nil, CurvePoints: 20}})
		if err != nil {
			return fmt.Errorf("pipeline: cross-validate %s: %w", lname, err)
		}
		cv.Learner = lname
		res.Uplift = append(res.Uplift, cv)
		q := 0.0
		for _, a := range cv.Arms {
			q += a.Qini / float64(len(cv.Arms))
			fmt.Fprintf(tw, "%s\t%s\t%.4f\t[%.4f, %.4f]\t%.4f\t%.4f\t%.3f\t%.3f\t%.3f\t\n", lname, a.Arm, a.Qini, a.Lo.Qini, a.Hi.Qini,
				a.AUUC, a.AUUCRandom, a.UpliftAt10, a.UpliftAt20, a.UpliftAt30)
		}
		if q > bestQ {
			best, bestQ = i, q
		}
	}
	tw.Flush()
	l, lname, params := upliftLearner(names[best], o.Seed, ds.N(), nil, nil)
	o.Progress("fit "+lname+" on all rows", 0, 0)
	m, err := l.Fit(ctx, ds)
	if err != nil {
		return fmt.Errorf("pipeline: fit %s: %w", lname, err)
	}
	fmt.Fprintf(rep, "chosen: %s (best mean Qini over the arms), refitted on all %d rows\n", lname, ds.N())
	rec := res.Record
	rec.Kind, rec.Learner, rec.Arms = KindUplift, lname, slices.Clone(ds.Arms)
	for k, v := range params {
		rec.Params[k] = v
	}
	rec.Metrics = map[string]float64{"mean_qini": bestQ}
	for _, a := range res.Uplift[best].Arms {
		for k, v := range map[string]float64{"qini": a.Qini, "qini_lo": a.Lo.Qini, "qini_hi": a.Hi.Qini, "auuc": a.AUUC,
			"auuc_random": a.AUUCRandom, "uplift_at_10": a.UpliftAt10, "uplift_at_20": a.UpliftAt20, "uplift_at_30": a.UpliftAt30} {
			rec.Metrics[k+"."+a.Arm] = v
		}
	}
	var buf bytes.Buffer
	if err := uplift.Write(&buf, m, uplift.DefaultCodec); err != nil {
		return fmt.Errorf("pipeline: write uplift artifact: %w", err)
	}
	rec.Artifact = buf.Bytes()
	return nil
}

// TableLevels returns the category levels a table model was trained with (nil for a model
// trained on the event log's features).
func TableLevels(rec *store.ModelRecord) ([][]string, error) {
	if rec.Kind == KindPropensity {
		a, err := model.ReadArtifact(bytes.NewReader(rec.Artifact))
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		return a.Info.Levels, nil
	}
	s := rec.Params["levels"]
	if s == "" || s == "null" {
		return nil, nil
	}
	var lv [][]string
	if err := json.Unmarshal([]byte(s), &lv); err != nil {
		return nil, fmt.Errorf("pipeline: levels of model %d: %w", rec.Version, err)
	}
	return lv, nil
}
