package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/training/pipeline"
)

// modelsFlags are the flags shared by `nudge models` subcommands.
type modelsFlags struct {
	data, config, site string
	server, adminKey   string
	kind               string
	out                string
	logLevel           string
	timeout            time.Duration
}

// modelsBackend is the registry the models commands talk to: the local store or a running
// server's admin API.
type modelsBackend interface {
	list(ctx context.Context) (*serve.ModelsResponse, error)
	show(ctx context.Context, version int) (*serve.ModelInfo, error)
	promote(ctx context.Context, version int) (*serve.PromoteResult, error)
	rollback(ctx context.Context, kind string) (*serve.PromoteResult, error)
	export(ctx context.Context, version int, w io.Writer) error
	importModel(ctx context.Context, r io.Reader) (*serve.ModelInfo, error)
}

func newModelsCmd(a *app) *cobra.Command {
	var f modelsFlags
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, compare, promote, roll back, export and import registered models",
		Long: `Manage the model registry of a site.

By default the commands open the data directory (--data), which must not be in use by a
running server (Badger allows one process). With --server URL and --admin-key K they call the
server's admin API instead, and a promotion or rollback is swapped into the live decide path
at once, without a restart.

A model whose feature schema fingerprint does not match the site's live features cannot be
promoted (exit code 1 with the reason; HTTP 409 through the server).

Environment: NUDGE_DATA, NUDGE_CONFIG, NUDGE_SITE, NUDGE_SERVER, NUDGE_ADMIN_KEY.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.data, "data", "./nudge-data", "data directory (Badger)")
	pf.StringVar(&f.config, "config", "", "site configuration file (YAML); none means the demo site")
	pf.StringVar(&f.site, "site", "", "site (default: the config's only site; with --server, the admin key's site)")
	pf.StringVar(&f.server, "server", "", "base URL of a running nudge server (e.g. http://127.0.0.1:8080)")
	pf.StringVar(&f.adminKey, "admin-key", "", "the site's admin key, for --server")
	pf.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	pf.DurationVar(&f.timeout, "timeout", time.Minute, "HTTP timeout with --server")

	// with opens the backend and runs fn.
	with := func(fn func(ctx context.Context, b modelsBackend) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(a, cmd.Flags(), map[string]string{
				"data": "NUDGE_DATA", "config": "NUDGE_CONFIG", "site": "NUDGE_SITE",
				"server": "NUDGE_SERVER", "admin-key": "NUDGE_ADMIN_KEY", "log-level": "NUDGE_LOG_LEVEL",
			}); err != nil {
				return &exitError{2, err}
			}
			ctx := cmd.Context()
			if f.server != "" {
				if f.adminKey == "" {
					return &exitError{2, errors.New("--server needs --admin-key (or NUDGE_ADMIN_KEY)")}
				}
				u, err := url.Parse(f.server)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return &exitError{2, fmt.Errorf("--server %q: want a URL like http://127.0.0.1:8080", f.server)}
				}
				return fn(ctx, &remoteModels{base: strings.TrimRight(f.server, "/"), key: f.adminKey,
					client: &http.Client{Timeout: f.timeout}})
			}
			ls, closeFn, err := openLearnSite(ctx, a, f.data, f.config, f.site, f.logLevel)
			if err != nil {
				return err
			}
			defer closeFn()
			return fn(ctx, &localModels{ls: ls})
		}
	}
	versionArg := func(s string) (int, error) {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return 0, &exitError{2, fmt.Errorf("version %q: want a positive integer", s)}
		}
		return v, nil
	}

	list := &cobra.Command{Use: "list", Short: "List the registered models, newest first", Args: cobra.NoArgs,
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			r, err := b.list(ctx)
			if err != nil {
				return err
			}
			printModelList(a.stdout, r)
			return nil
		})}
	var showV []int
	show := &cobra.Command{Use: "show VERSION", Short: "Show one model: learner, parameters, data range, metrics", Args: cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			v, err := versionArg(args[0])
			showV = []int{v}
			return err
		},
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			m, err := b.show(ctx, showV[0])
			if err != nil {
				return err
			}
			printModel(a.stdout, m)
			return nil
		})}
	var cmpV []int
	compare := &cobra.Command{Use: "compare VERSION VERSION...", Short: "Compare models' metrics side by side", Args: cobra.MinimumNArgs(2),
		PreRunE: func(_ *cobra.Command, args []string) error {
			cmpV = nil
			for _, s := range args {
				v, err := versionArg(s)
				if err != nil {
					return err
				}
				cmpV = append(cmpV, v)
			}
			return nil
		},
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			var ms []*serve.ModelInfo
			for _, v := range cmpV {
				m, err := b.show(ctx, v)
				if err != nil {
					return err
				}
				ms = append(ms, m)
			}
			printCompare(a.stdout, ms)
			return nil
		})}
	var promV []int
	promote := &cobra.Command{Use: "promote VERSION", Short: "Promote a model (refused on a feature schema mismatch)", Args: cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			v, err := versionArg(args[0])
			promV = []int{v}
			return err
		},
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			r, err := b.promote(ctx, promV[0])
			if err != nil {
				return err
			}
			printPromote(a.stdout, r)
			return nil
		})}
	rollback := &cobra.Command{Use: "rollback", Short: "Restore the promotion before the one in force", Args: cobra.NoArgs,
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			if f.kind != pipeline.KindPropensity && f.kind != pipeline.KindUplift {
				return &exitError{2, fmt.Errorf("--kind %q: want propensity or uplift", f.kind)}
			}
			r, err := b.rollback(ctx, f.kind)
			if err != nil {
				return err
			}
			printPromote(a.stdout, r)
			return nil
		})}
	rollback.Flags().StringVar(&f.kind, "kind", pipeline.KindUplift, "model kind: propensity or uplift")
	var expV []int
	export := &cobra.Command{Use: "export VERSION", Short: "Export a model (record and artifact) as JSON", Args: cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			v, err := versionArg(args[0])
			expV = []int{v}
			return err
		},
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			var buf bytes.Buffer
			if err := b.export(ctx, expV[0], &buf); err != nil {
				return err
			}
			if f.out == "" || f.out == "-" {
				_, err := a.stdout.Write(buf.Bytes())
				return err
			}
			if err := os.WriteFile(f.out, buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("models export: %w", err)
			}
			fmt.Fprintf(a.stderr, "wrote model %d to %s\n", expV[0], f.out)
			return nil
		})}
	export.Flags().StringVarP(&f.out, "out", "o", "", "file to write (default: standard output)")
	var impFile []string
	imp := &cobra.Command{Use: "import FILE", Short: "Import an exported model as a new version", Args: cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error { impFile = args; return nil },
		RunE: with(func(ctx context.Context, b modelsBackend) error {
			data, err := os.ReadFile(impFile[0])
			if err != nil {
				return fmt.Errorf("models import: %w", err)
			}
			m, err := b.importModel(ctx, bytes.NewReader(data))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "imported %s as %s model version %d (%s)\n", impFile[0], m.Kind, m.Version, m.Learner)
			return nil
		})}
	cmd.AddCommand(list, show, compare, promote, rollback, export, imp)
	return cmd
}

// localModels is the registry in the local data directory.
type localModels struct{ ls *learnSite }

// recordInfo presents a registry record as the admin API does (finite metrics only).
func recordInfo(rec *store.ModelRecord, promoted map[string]int) *serve.ModelInfo {
	m := &serve.ModelInfo{Site: rec.Site, Version: rec.Version, Kind: rec.Kind, Learner: rec.Learner, Params: rec.Params,
		Fingerprint: rec.Fingerprint, Features: rec.Features, Arms: rec.Arms, TrainFrom: rec.TrainFrom, TrainTo: rec.TrainTo,
		Rows: rec.Rows, Metrics: map[string]float64{}, CreatedAt: rec.CreatedAt, Note: rec.Note,
		Promoted: promoted[rec.Kind] == rec.Version}
	for k, v := range rec.Metrics {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m.Metrics[k] = v
		}
	}
	return m
}

func (l *localModels) promoted(ctx context.Context) (map[string]int, error) {
	p := map[string]int{}
	for _, kind := range []string{pipeline.KindPropensity, pipeline.KindUplift} {
		rec, err := l.ls.st.Promoted(ctx, l.ls.site.ID, kind)
		switch {
		case err == nil:
			p[kind] = rec.Version
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	return p, nil
}

func (l *localModels) list(ctx context.Context) (*serve.ModelsResponse, error) {
	recs, err := l.ls.st.Models(ctx, l.ls.site.ID)
	if err != nil {
		return nil, err
	}
	p, err := l.promoted(ctx)
	if err != nil {
		return nil, err
	}
	r := &serve.ModelsResponse{Site: l.ls.site.ID, Promoted: p}
	for i := range recs {
		r.Models = append(r.Models, *recordInfo(&recs[i], p))
	}
	return r, nil
}

func (l *localModels) show(ctx context.Context, v int) (*serve.ModelInfo, error) {
	rec, err := l.ls.st.Model(ctx, l.ls.site.ID, v)
	if err != nil {
		return nil, modelsErr(err)
	}
	p, err := l.promoted(ctx)
	if err != nil {
		return nil, err
	}
	return recordInfo(rec, p), nil
}

func modelsErr(err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, pipeline.ErrSchemaMismatch) {
		return &exitError{1, err}
	}
	return err
}

func (l *localModels) promote(ctx context.Context, v int) (*serve.PromoteResult, error) {
	rep, err := pipeline.Promote(ctx, l.ls.st, l.ls.site.ID, v, l.ls.schema, time.Now(), pipeline.WithSite(l.ls.site))
	if err != nil {
		return nil, modelsErr(err)
	}
	p, err := l.promoted(ctx)
	if err != nil {
		return nil, err
	}
	r := &serve.PromoteResult{Model: recordInfo(rep.Record, p), Previous: rep.Previous, Report: rep.Text}
	if rep.OPE != nil {
		r.OPE = rep.OPE
	}
	return r, nil
}

func (l *localModels) rollback(ctx context.Context, kind string) (*serve.PromoteResult, error) {
	before, _ := l.promoted(ctx)
	rec, err := pipeline.Rollback(ctx, l.ls.st, l.ls.site.ID, kind, time.Now())
	if err != nil {
		return nil, modelsErr(err)
	}
	p, err := l.promoted(ctx)
	if err != nil {
		return nil, err
	}
	return &serve.PromoteResult{Model: recordInfo(rec, p), Previous: before[kind],
		Report: fmt.Sprintf("rolled back %s: version %d in force again (was %d)\n", kind, rec.Version, before[kind])}, nil
}

func (l *localModels) export(ctx context.Context, v int, w io.Writer) error {
	rec, err := l.ls.st.Model(ctx, l.ls.site.ID, v)
	if err != nil {
		return modelsErr(err)
	}
	return pipeline.Export(w, rec)
}

func (l *localModels) importModel(ctx context.Context, r io.Reader) (*serve.ModelInfo, error) {
	rec, err := pipeline.Import(r)
	if err != nil {
		return nil, &exitError{1, err}
	}
	rec.Site, rec.CreatedAt = l.ls.site.ID, 0
	if err := l.ls.st.PutModel(ctx, rec); err != nil {
		return nil, err
	}
	return recordInfo(rec, nil), nil
}

// remoteModels is a running server's admin model API.
type remoteModels struct {
	base, key string
	client    *http.Client
}

// call sends a request and decodes a JSON answer into out (or copies the body to w).
func (r *remoteModels) call(ctx context.Context, method, path string, body io.Reader, out any, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Code + ": " + e.Error.Message
		}
		return &exitError{1, fmt.Errorf("server: %s %s: %s: %s", method, path, resp.Status, msg)}
	}
	if w != nil {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("server: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (r *remoteModels) list(ctx context.Context) (*serve.ModelsResponse, error) {
	var out serve.ModelsResponse
	return &out, r.call(ctx, http.MethodGet, "/v1/models", nil, &out, nil)
}

func (r *remoteModels) show(ctx context.Context, v int) (*serve.ModelInfo, error) {
	var out serve.ModelInfo
	return &out, r.call(ctx, http.MethodGet, "/v1/models/"+strconv.Itoa(v), nil, &out, nil)
}

func (r *remoteModels) promote(ctx context.Context, v int) (*serve.PromoteResult, error) {
	var out serve.PromoteResponse
	if err := r.call(ctx, http.MethodPost, "/v1/models/"+strconv.Itoa(v)+"/promote", nil, &out, nil); err != nil {
		return nil, err
	}
	if out.PromoteResult == nil {
		return nil, errors.New("server: empty promotion answer")
	}
	return out.PromoteResult, nil
}

func (r *remoteModels) rollback(ctx context.Context, kind string) (*serve.PromoteResult, error) {
	var out serve.PromoteResponse
	if err := r.call(ctx, http.MethodPost, "/v1/models/rollback?kind="+url.QueryEscape(kind), nil, &out, nil); err != nil {
		return nil, err
	}
	if out.PromoteResult == nil {
		return nil, errors.New("server: empty rollback answer")
	}
	return out.PromoteResult, nil
}

func (r *remoteModels) export(ctx context.Context, v int, w io.Writer) error {
	return r.call(ctx, http.MethodGet, "/v1/models/"+strconv.Itoa(v)+"/export", nil, nil, w)
}

func (r *remoteModels) importModel(ctx context.Context, body io.Reader) (*serve.ModelInfo, error) {
	var out serve.ModelInfo
	return &out, r.call(ctx, http.MethodPost, "/v1/models/import", body, &out, nil)
}

func fmtMS(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04")
}

// headline is a model's main figure: holdout/CV AUC for propensity, the off-policy gain or
// mean Qini for uplift.
func headline(m *serve.ModelInfo) string {
	if v, ok := m.Metrics["auc"]; ok {
		return fmt.Sprintf("auc %.4f", v)
	}
	if v, ok := m.Metrics["ope_diff_snips"]; ok {
		return fmt.Sprintf("ope %+.3f/decision", v)
	}
	if v, ok := m.Metrics["mean_qini"]; ok {
		return fmt.Sprintf("qini %.4f", v)
	}
	return "-"
}

func printModelList(w io.Writer, r *serve.ModelsResponse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "version\tkind\tlearner\trows\tdata from\tdata to\tmetric\tcreated\tpromoted\tnote\t")
	for i := range r.Models {
		m := &r.Models[i]
		prom := ""
		if r.Promoted[m.Kind] == m.Version {
			prom = "*"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.Version, m.Kind, m.Learner, m.Rows, fmtMS(m.TrainFrom),
			fmtMS(m.TrainTo), headline(m), fmtMS(m.CreatedAt), prom, m.Note)
	}
	tw.Flush()
	if len(r.Models) == 0 {
		fmt.Fprintln(w, "no models registered: run nudge train")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func printModel(w io.Writer, m *serve.ModelInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version\t%d\n", m.Version)
	fmt.Fprintf(tw, "site\t%s\n", m.Site)
	fmt.Fprintf(tw, "kind\t%s\n", m.Kind)
	fmt.Fprintf(tw, "learner\t%s\n", m.Learner)
	fmt.Fprintf(tw, "promoted\t%v\n", m.Promoted)
	fmt.Fprintf(tw, "fingerprint\t%s\n", m.Fingerprint)
	fmt.Fprintf(tw, "features\t%d\n", len(m.Features))
	if len(m.Arms) > 0 {
		fmt.Fprintf(tw, "arms\t%s\n", strings.Join(m.Arms, ", "))
	}
	fmt.Fprintf(tw, "data\t%s .. %s, %d rows\n", fmtMS(m.TrainFrom), fmtMS(m.TrainTo), m.Rows)
	fmt.Fprintf(tw, "created\t%s\n", fmtMS(m.CreatedAt))
	if m.Note != "" {
		fmt.Fprintf(tw, "note\t%s\n", m.Note)
	}
	for _, k := range sortedKeys(m.Params) {
		if k == "levels" {
			continue
		}
		fmt.Fprintf(tw, "param %s\t%s\n", k, m.Params[k])
	}
	for _, k := range sortedKeys(m.Metrics) {
		fmt.Fprintf(tw, "metric %s\t%.4f\n", k, m.Metrics[k])
	}
	tw.Flush()
}

func printCompare(w io.Writer, ms []*serve.ModelInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "\t")
	for _, m := range ms {
		fmt.Fprintf(tw, "v%d\t", m.Version)
	}
	fmt.Fprintln(tw)
	row := func(name string, val func(m *serve.ModelInfo) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t", val(m))
		}
		fmt.Fprintln(tw)
	}
	row("kind", func(m *serve.ModelInfo) string { return m.Kind })
	row("learner", func(m *serve.ModelInfo) string { return m.Learner })
	row("rows", func(m *serve.ModelInfo) string { return strconv.Itoa(m.Rows) })
	row("data to", func(m *serve.ModelInfo) string { return fmtMS(m.TrainTo) })
	row("fingerprint", func(m *serve.ModelInfo) string { return m.Fingerprint })
	row("promoted", func(m *serve.ModelInfo) string { return strconv.FormatBool(m.Promoted) })
	keys := map[string]bool{}
	for _, m := range ms {
		for k := range m.Metrics {
			if !strings.HasPrefix(k, "importance.") {
				keys[k] = true
			}
		}
	}
	for _, k := range sortedKeys(keys) {
		row(k, func(m *serve.ModelInfo) string {
			if v, ok := m.Metrics[k]; ok {
				return fmt.Sprintf("%.4f", v)
			}
			return "-"
		})
	}
	tw.Flush()
}

func printPromote(w io.Writer, r *serve.PromoteResult) {
	if r.Report != "" {
		fmt.Fprint(w, r.Report)
		return
	}
	fmt.Fprintf(w, "%s model version %d in force (was %d)\n", r.Model.Kind, r.Model.Version, r.Previous)
}
