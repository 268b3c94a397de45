package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training/pipeline"
	"github.com/nudgehq/nudge/training/table"
	"github.com/nudgehq/nudge/training/uplift"
)

// predictFlags are the flags of `nudge predict`.
type predictFlags struct {
	data, config, site string
	model              string
	in, out, id        string
	sessions           bool
	from, to           string
	logLevel           string
}

func newPredictCmd(a *app) *cobra.Command {
	var f predictFlags
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Score a CSV table or the event log's sessions with a model",
		Long: `Batch scoring.

--in data.csv: one output row per input row, in input order: the row number (1 = first data
row), the --id column when given, then the propensity (propensity models) or the baseline
conversion probability and the predicted uplift of each arm against the control (uplift
models: columns uplift_<arm>). The input needs a column for every model feature (matched by
name; extra columns are ignored); empty cells are missing values, categories are coded as in
training (unseen ones are missing).

--sessions: scores every logged session of the site that started in [--from, --to) with its
live feature vector as of its last event, using the promoted models (or --model VERSION).

--model is a registry version (needs --data) or a file: an exported record (nudge models
export, nudge train --out), a model artifact or an uplift artifact.

Environment: NUDGE_DATA, NUDGE_CONFIG, NUDGE_SITE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(a, cmd.Flags(), map[string]string{
				"data": "NUDGE_DATA", "config": "NUDGE_CONFIG", "site": "NUDGE_SITE", "log-level": "NUDGE_LOG_LEVEL",
			}); err != nil {
				return &exitError{2, err}
			}
			if f.sessions == (f.in != "") {
				return &exitError{2, errors.New("give either --in FILE.csv or --sessions")}
			}
			if f.in != "" && f.model == "" {
				return &exitError{2, errors.New("--in needs --model (a registry version or a file)")}
			}
			return runPredict(cmd.Context(), a, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", "./nudge-data", "data directory (Badger)")
	fs.StringVar(&f.config, "config", "", "site configuration file (YAML); none means the demo site")
	fs.StringVar(&f.site, "site", "", "site (default: the config's only site)")
	fs.StringVar(&f.model, "model", "", "registry version or model file")
	fs.StringVar(&f.in, "in", "", "CSV table to score")
	fs.StringVar(&f.out, "out", "", "CSV file to write (default: standard output)")
	fs.StringVar(&f.id, "id", "", "input column copied to the output (a row id)")
	fs.BoolVar(&f.sessions, "sessions", false, "score the event log's sessions with the promoted models")
	fs.StringVar(&f.from, "from", "", "sessions started at or after (2006-01-02 or RFC 3339)")
	fs.StringVar(&f.to, "to", "", "sessions started before")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

// scorer is a loaded model of either kind with the encoding of its input columns.
type scorer struct {
	names   []string
	enc     *table.Encoding
	binary  model.Binary
	uplift  uplift.Model
	version int
}

func (s *scorer) header() []string {
	if s.binary != nil {
		return []string{"propensity"}
	}
	h := []string{"baseline"}
	for _, a := range s.uplift.Arms()[1:] {
		h = append(h, "uplift_"+a)
	}
	return h
}

// score appends the formatted scores of x to out.
func (s *scorer) score(x []float64, buf []float64, out []string) ([]string, error) {
	ff := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	if s.binary != nil {
		p, err := s.binary.Score(x)
		if err != nil {
			return nil, err
		}
		return append(out, ff(p)), nil
	}
	b, err := s.uplift.Baseline(x)
	if err != nil {
		return nil, err
	}
	if err := s.uplift.Predict(x, buf); err != nil {
		return nil, err
	}
	out = append(out, ff(b))
	for _, v := range buf {
		out = append(out, ff(v))
	}
	return out, nil
}

// scorerFromRecord decodes a registry record's artifact.
func scorerFromRecord(rec *store.ModelRecord) (*scorer, error) {
	levels, err := pipeline.TableLevels(rec)
	if err != nil {
		return nil, err
	}
	enc, err := table.EncodingFromLevels(rec.Features, levels)
	if err != nil {
		return nil, err
	}
	s := &scorer{names: rec.Features, enc: enc, version: rec.Version}
	switch rec.Kind {
	case pipeline.KindPropensity:
		s.binary, err = model.Read(bytes.NewReader(rec.Artifact))
	case pipeline.KindUplift:
		s.uplift, err = uplift.Read(bytes.NewReader(rec.Artifact), uplift.DefaultCodec)
	default:
		err = fmt.Errorf("unknown model kind %q", rec.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("model %d: %w", rec.Version, err)
	}
	return s, nil
}

// scorerFromFile reads an exported record, a model artifact or an uplift artifact.
func scorerFromFile(path string) (*scorer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if rec, err := pipeline.Import(bytes.NewReader(data)); err == nil {
		return scorerFromRecord(rec)
	}
	if art, err := model.ReadArtifact(bytes.NewReader(data)); err == nil {
		enc, err := table.EncodingFromLevels(art.Info.Features, art.Info.Levels)
		if err != nil {
			return nil, err
		}
		return &scorer{names: art.Info.Features, enc: enc, binary: art.Model}, nil
	}
	m, err := uplift.Read(bytes.NewReader(data), uplift.DefaultCodec)
	if err != nil {
		return nil, fmt.Errorf("%s is neither an exported model, a model artifact nor an uplift artifact: %w", path, err)
	}
	enc, _ := table.EncodingFromLevels(m.Features(), nil)
	return &scorer{names: m.Features(), enc: enc, uplift: m}, nil
}

func runPredict(ctx context.Context, a *app, f predictFlags) error {
	var out io.Writer = a.stdout
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return fmt.Errorf("predict: %w", err)
		}
		defer file.Close()
		out = file
	}
	if f.sessions {
		return predictSessions(ctx, a, f, out)
	}
	var s *scorer
	if v, err := strconv.Atoi(f.model); err == nil {
		ls, closeFn, err := openLearnSite(ctx, a, f.data, f.config, f.site, f.logLevel)
		if err != nil {
			return err
		}
		rec, err := ls.st.Model(ctx, ls.site.ID, v)
		closeFn()
		if err != nil {
			return &exitError{1, fmt.Errorf("predict: %w", err)}
		}
		if s, err = scorerFromRecord(rec); err != nil {
			return fmt.Errorf("predict: %w", err)
		}
	} else {
		if s, err = scorerFromFile(f.model); err != nil {
			return &exitError{1, fmt.Errorf("predict: %w", err)}
		}
	}
	in, err := os.Open(f.in)
	if err != nil {
		return &exitError{1, fmt.Errorf("predict: %w", err)}
	}
	defer in.Close()
	n, err := predictCSV(in, out, s, f.id)
	if err != nil {
		return &exitError{1, fmt.Errorf("predict %s: %w", f.in, err)}
	}
	if f.out != "" {
		fmt.Fprintf(a.stderr, "scored %d rows into %s\n", n, f.out)
	}
	return nil
}

// predictCSV scores every row of in and writes the scores to out.
func predictCSV(in io.Reader, out io.Writer, s *scorer, idCol string) (int, error) {
	r := csv.NewReader(in)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return 0, fmt.Errorf("header: %w", err)
	}
	pos := map[string]int{}
	for i, h := range head {
		pos[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	cols := make([]int, len(s.names))
	var missing []string
	for j, n := range s.names {
		i, ok := pos[n]
		if !ok {
			missing = append(missing, n)
		}
		cols[j] = i
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("the table lacks the model's feature columns %s", strings.Join(missing, ", "))
	}
	idIdx := -1
	if idCol != "" {
		i, ok := pos[idCol]
		if !ok {
			return 0, fmt.Errorf("--id %q: no such column", idCol)
		}
		idIdx = i
	}
	w := csv.NewWriter(out)
	oh := []string{"row"}
	if idIdx >= 0 {
		oh = append(oh, idCol)
	}
	if err := w.Write(append(oh, s.header()...)); err != nil {
		return 0, err
	}
	x := make([]float64, len(s.names))
	var buf []float64
	if s.uplift != nil {
		buf = make([]float64, len(s.uplift.Arms())-1)
	}
	n := 0
	var row []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		n++
		line, _ := r.FieldPos(0)
		for j, c := range cols {
			if c >= len(rec) {
				return n, fmt.Errorf("line %d: %d fields", line, len(rec))
			}
			if x[j], err = s.enc.Value(j, rec[c]); err != nil {
				return n, fmt.Errorf("line %d: column %s: %w", line, s.names[j], err)
			}
		}
		row = append(row[:0], strconv.Itoa(n))
		if idIdx >= 0 {
			row = append(row, rec[idIdx])
		}
		if row, err = s.score(x, buf, row); err != nil {
			return n, fmt.Errorf("line %d: %w", line, err)
		}
		if err := w.Write(row); err != nil {
			return n, err
		}
	}
	w.Flush()
	return n, w.Error()
}

// predictSessions scores the log's sessions with their live vectors.
func predictSessions(ctx context.Context, a *app, f predictFlags, out io.Writer) error {
	from, err := parseDay("from", f.from)
	if err != nil {
		return &exitError{2, err}
	}
	to, err := parseDay("to", f.to)
	if err != nil {
		return &exitError{2, err}
	}
	if to == 0 {
		to = math.MaxInt64
	}
	ls, closeFn, err := openLearnSite(ctx, a, f.data, f.config, f.site, f.logLevel)
	if err != nil {
		return err
	}
	defer closeFn()
	var scorers []*scorer
	if f.model != "" {
		v, err := strconv.Atoi(f.model)
		if err != nil {
			return &exitError{2, fmt.Errorf("--model with --sessions is a registry version, not %q", f.model)}
		}
		rec, err := ls.st.Model(ctx, ls.site.ID, v)
		if err != nil {
			return &exitError{1, fmt.Errorf("predict: %w", err)}
		}
		if rec.Fingerprint != ls.schema.Fingerprint {
			return &exitError{1, fmt.Errorf("predict: %w: model %d", pipeline.ErrSchemaMismatch, v)}
		}
		s, err := scorerFromRecord(rec)
		if err != nil {
			return err
		}
		scorers = append(scorers, s)
	} else {
		b, err := pipeline.LoadPromoted(ctx, ls.st, ls.site.ID)
		if err != nil {
			return err
		}
		if b.Propensity != nil {
			if b.PropensityFingerprint != ls.schema.Fingerprint {
				return &exitError{1, fmt.Errorf("predict: %w: promoted propensity model %d", pipeline.ErrSchemaMismatch, b.PropensityVersion)}
			}
			scorers = append(scorers, &scorer{binary: b.Propensity, version: b.PropensityVersion})
		}
		if b.Uplift != nil {
			if b.UpliftFingerprint != ls.schema.Fingerprint {
				return &exitError{1, fmt.Errorf("predict: %w: promoted uplift model %d", pipeline.ErrSchemaMismatch, b.UpliftVersion)}
			}
			scorers = append(scorers, &scorer{uplift: b.Uplift, version: b.UpliftVersion})
		}
		if len(scorers) == 0 {
			return &exitError{1, errors.New("predict: no promoted model: promote one (nudge models promote) or pass --model VERSION")}
		}
	}
	w := csv.NewWriter(out)
	head := []string{"session", "anonymous_id", "start", "last", "events", "converted"}
	for _, s := range scorers {
		head = append(head, s.header()...)
	}
	if err := w.Write(head); err != nil {
		return err
	}
	x := make([]float64, ls.schema.Len())
	bufs := make([][]float64, len(scorers))
	for i, s := range scorers {
		if s.uplift != nil {
			bufs[i] = make([]float64, len(s.uplift.Arms())-1)
		}
	}
	n := 0
	var row []string
	err = ls.st.ScanSessions(ctx, ls.site.ID, from, to, func(info store.SessionInfo) error {
		if _, err := ls.st.Features(ctx, ls.site.ID, info.Session, info.LastTS, x); err != nil {
			return err
		}
		row = append(row[:0], info.Session, info.AnonymousID, fmtMS(info.StartTS), fmtMS(info.LastTS),
			strconv.Itoa(info.Events), strconv.FormatBool(info.Converted))
		for i, s := range scorers {
			var err error
			if row, err = s.score(x, bufs[i], row); err != nil {
				return err
			}
		}
		n++
		return w.Write(row)
	})
	if err != nil {
		return fmt.Errorf("predict sessions: %w", err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "scored %d sessions\n", n)
	return nil
}
