package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
)

// simulateInto fills a data directory with simulated demo-shop traffic under the random
// policy, every decision logged, and closes the store.
func simulateInto(t *testing.T, dir string, visitors, days int) {
	t.Helper()
	ctx := context.Background()
	st, err := openStore(ctx, config.Demo(), storeOptions{dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.Config{Seed: 3, Visitors: visitors, Days: days})
	if err != nil {
		t.Fatal(err)
	}
	rnd := sim.NewRandomPolicy(3)
	_, err = s.Run(ctx, func(ctx context.Context, evs []features.Event) error {
		_, err := st.Append(ctx, "demo", evs)
		return err
	}, sim.DeciderFunc(func(ctx context.Context, req sim.DecisionRequest) (sim.Decision, error) {
		d, err := rnd.Decide(ctx, req)
		if err != nil {
			return d, err
		}
		sess, err := st.ResolveSession(ctx, "demo", req.SessionID)
		if err != nil {
			return d, err
		}
		return d, st.LogDecision(ctx, &store.DecisionRecord{ID: d.DecisionID, Site: "demo", Session: sess,
			AnonymousID: req.AnonymousID, TS: req.TS, Group: "explore", Arm: d.Intervention, Probability: d.Probability,
			Interventions: req.Eligible})
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLearnCommands runs the learn journey through the CLI on a data directory: train
// (tables printed), models list/show/compare/promote/rollback/export/import, predict on the
// sessions and on a CSV.
func TestLearnCommands(t *testing.T) {
	dir := t.TempDir()
	simulateInto(t, dir, 350, 14)

	code, out, errOut := runCmd(t, "train", "--data", dir, "--bootstrap", "20", "--uplift-learner", "t", "--note", "first")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"propensity:", "logreg", "gbdt", "auc", "observed", "bin", "importance",
		"uplift:", "qini", "off-policy", "registered propensity model version 1", "registered uplift model version 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("train output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("nudge train:\n%s", out)

	// Export the point-in-time training sets.
	exportDir := t.TempDir()
	code, out, errOut = runCmd(t, "train", "--data", dir, "--export", filepath.Join(exportDir, "train.csv"))
	if code != 0 || !strings.Contains(out, "train-uplift.csv") {
		t.Fatalf("train --export: exit %d\n%s%s", code, out, errOut)
	}
	ex := readCSV(t, filepath.Join(exportDir, "train-uplift.csv"))
	if h := strings.Join(ex[0], ","); !strings.Contains(h, "page_views") || !strings.HasSuffix(h, "label,treatment,propensity,ts") || len(ex) < 100 {
		t.Errorf("uplift export: %d rows, header %s", len(ex), h)
	}

	code, out, _ = runCmd(t, "models", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "propensity") || !strings.Contains(out, "uplift") || strings.Contains(out, "*") {
		t.Fatalf("models list: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "models", "show", "2", "--data", dir)
	if code != 0 || !strings.Contains(out, "arms") || !strings.Contains(out, "metric qini.discount10") || !strings.Contains(out, "first") {
		t.Errorf("models show 2: exit %d\n%s", code, out)
	}
	if code, _, errOut = runCmd(t, "models", "show", "9", "--data", dir); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("models show 9: exit %d %s", code, errOut)
	}
	if code, _, _ = runCmd(t, "models", "show", "x", "--data", dir); code != 2 {
		t.Errorf("models show x: exit %d, want 2", code)
	}

	code, out, errOut = runCmd(t, "models", "promote", "1", "--data", dir)
	if code != 0 || !strings.Contains(out, "promoted propensity model version 1") {
		t.Fatalf("promote 1: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "models", "promote", "2", "--data", dir)
	if code != 0 || !strings.Contains(out, "off-policy value") {
		t.Fatalf("promote 2: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("nudge models promote 2:\n%s", out)

	// Export, import as version 3, compare, promote it, roll back to 2.
	exp := filepath.Join(t.TempDir(), "m2.json")
	if code, _, errOut = runCmd(t, "models", "export", "2", "--data", dir, "-o", exp); code != 0 {
		t.Fatalf("export: %d %s", code, errOut)
	}
	code, out, errOut = runCmd(t, "models", "import", exp, "--data", dir)
	if code != 0 || !strings.Contains(out, "uplift model version 3") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "models", "compare", "2", "3", "--data", dir)
	if code != 0 || !strings.Contains(out, "v2") || !strings.Contains(out, "v3") || !strings.Contains(out, "qini.chat_offer") {
		t.Errorf("compare: exit %d\n%s", code, out)
	}
	if code, out, _ = runCmd(t, "models", "promote", "3", "--data", dir); code != 0 || !strings.Contains(out, "replacing version 2") {
		t.Errorf("promote 3: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "models", "rollback", "--kind", "uplift", "--data", dir)
	if code != 0 || !strings.Contains(out, "version 2 in force again") {
		t.Errorf("rollback: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "models", "list", "--data", dir)
	if code != 0 || strings.Count(out, "*") != 2 {
		t.Errorf("after rollback: exit %d\n%s", code, out)
	}

	// Score the sessions with the promoted models.
	scores := filepath.Join(t.TempDir(), "sessions.csv")
	code, _, errOut = runCmd(t, "predict", "--sessions", "--data", dir, "--out", scores)
	if code != 0 {
		t.Fatalf("predict --sessions: exit %d %s", code, errOut)
	}
	rows := readCSV(t, scores)
	if len(rows) < 100 || strings.Join(rows[0], ",") != "session,anonymous_id,start,last,events,converted,propensity,baseline,uplift_discount10,uplift_chat_offer,uplift_help_tip" {
		t.Fatalf("predict --sessions: %d rows, header %v", len(rows), rows[0])
	}
	for _, r := range rows[1:] {
		var p float64
		if _, err := fmt.Sscan(r[6], &p); err != nil || p < 0 || p > 1 {
			t.Fatalf("propensity %q", r[6])
		}
	}

	// The same through a running server's admin API (the server holds the Badger lock).
	srv := startServe(t, dir)
	key := config.Demo().Sites[0].AdminKey
	remote := func(args ...string) (int, string, string) {
		return runCmd(t, append(args, "--server", srv.url, "--admin-key", key)...)
	}
	if code, _, errOut = runCmd(t, "models", "list", "--data", dir); code == 0 {
		t.Errorf("models list on a data directory in use by the server succeeded")
	} else if !strings.Contains(errOut, "--server") {
		t.Errorf("the lock error does not point to --server: %s", errOut)
	}
	code, out, errOut = remote("models", "list")
	if code != 0 || !strings.Contains(out, "uplift") || strings.Count(out, "*") != 2 {
		t.Fatalf("remote list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = remote("models", "promote", "3")
	if code != 0 || !strings.Contains(out, "version 3") {
		t.Fatalf("remote promote 3: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = remote("models", "show", "3")
	if code != 0 || !promotedRE.MatchString(out) {
		t.Errorf("remote show 3: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = remote("models", "rollback", "--kind", "uplift"); code != 0 {
		t.Errorf("remote rollback: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = remote("models", "show", "2")
	if code != 0 || !promotedRE.MatchString(out) {
		t.Errorf("after remote rollback, show 2:\n%s", out)
	}
	exp2 := filepath.Join(t.TempDir(), "remote.json")
	if code, _, errOut = remote("models", "export", "1", "-o", exp2); code != 0 {
		t.Fatalf("remote export: %d %s", code, errOut)
	}
	if code, out, errOut = remote("models", "import", exp2); code != 0 || !strings.Contains(out, "propensity model version 4") {
		t.Errorf("remote import: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = remote("models", "show", "99"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("remote show 99: exit %d %s", code, errOut)
	}
	if code, _, errOut = runCmd(t, "models", "list", "--server", srv.url, "--admin-key", "wrong-key-0123456789"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("wrong admin key: exit %d %s", code, errOut)
	}
}

var promotedRE = regexp.MustCompile(`(?m)^promoted\s+true$`)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// writeTable writes a synthetic table: x1, x2 numeric, color categorical, a treatment
// (control / promo) with an effect for color = red, and the label.
func writeTable(t *testing.T, path string, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("id,x1,x2,color,arm,bought\n")
	colors := []string{"red", "green", "blue"}
	for i := range n {
		x1, x2 := r.NormFloat64(), r.NormFloat64()
		c := colors[r.IntN(3)]
		arm := "control"
		if r.IntN(2) == 1 {
			arm = "promo"
		}
		z := 1.2*x1 - 0.8*x2 - 0.5
		if arm == "promo" && c == "red" {
			z += 1.5
		}
		y := 0
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		fmt.Fprintf(&b, "r%d,%.4f,%.4f,%s,%s,%d\n", i, x1, x2, c, arm, y)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrainTableAndPredict trains on a data scientist's table (propensity and uplift), writes
// the models with --out and scores the table back with nudge predict.
func TestTrainTableAndPredict(t *testing.T) {
	dir := t.TempDir()
	tab := filepath.Join(t.TempDir(), "table.csv")
	writeTable(t, tab, 3000)

	model := filepath.Join(t.TempDir(), "prop.json")
	code, out, errOut := runCmd(t, "train", "--data", dir, "--table", tab, "--label", "bought", "--ignore", "id,arm",
		"--categorical", "color", "--folds", "3", "--out", model)
	if code != 0 {
		t.Fatalf("train --table: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "3-fold") || !strings.Contains(out, "logreg") || !strings.Contains(out, "registered propensity model version 1") ||
		!strings.Contains(out, "fingerprint table-") {
		t.Errorf("train --table output:\n%s", out)
	}
	t.Logf("nudge train --table:\n%s", out)
	scores := filepath.Join(t.TempDir(), "scores.csv")
	if code, _, errOut = runCmd(t, "predict", "--model", model, "--in", tab, "--out", scores, "--id", "id"); code != 0 {
		t.Fatalf("predict: exit %d %s", code, errOut)
	}
	rows := readCSV(t, scores)
	if len(rows) != 3001 || strings.Join(rows[0], ",") != "row,id,propensity" || rows[1][1] != "r0" {
		t.Fatalf("predict: %d rows, first %v %v", len(rows), rows[0], rows[1])
	}
	// The registry version scores the same.
	scores2 := filepath.Join(t.TempDir(), "scores2.csv")
	if code, _, errOut = runCmd(t, "predict", "--model", "1", "--data", dir, "--in", tab, "--out", scores2); code != 0 {
		t.Fatalf("predict --model 1: exit %d %s", code, errOut)
	}
	rows2 := readCSV(t, scores2)
	for i := 1; i < len(rows); i += 500 {
		if rows[i][2] != rows2[i][1] {
			t.Fatalf("row %d: file model %s, registry model %s", i, rows[i][2], rows2[i][1])
		}
	}
	// A table model cannot be promoted.
	if code, _, errOut = runCmd(t, "models", "promote", "1", "--data", dir); code != 1 || !strings.Contains(errOut, "schema") {
		t.Errorf("promote a table model: exit %d %s", code, errOut)
	}

	// Uplift on the same table.
	um := filepath.Join(t.TempDir(), "uplift.json")
	code, out, errOut = runCmd(t, "train", "--data", dir, "--table", tab, "--label", "bought", "--ignore", "id",
		"--treatment", "arm", "--control", "control", "--folds", "3", "--bootstrap", "20", "--uplift-learner", "t", "--out", um)
	if code != 0 {
		t.Fatalf("train --table --treatment: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "promo") || !strings.Contains(out, "qini") || !strings.Contains(out, "uplift model version 2") {
		t.Errorf("uplift table output:\n%s", out)
	}
	t.Logf("nudge train --table --treatment:\n%s", out)
	if code, _, errOut = runCmd(t, "predict", "--model", um, "--in", tab, "--out", scores); code != 0 {
		t.Fatalf("predict uplift: exit %d %s", code, errOut)
	}
	rows = readCSV(t, scores)
	if strings.Join(rows[0], ",") != "row,baseline,uplift_promo" {
		t.Fatalf("uplift header %v", rows[0])
	}
	// the effect is for red rows: their mean predicted uplift is clearly larger
	in := readCSV(t, tab)
	var red, other, nr, no float64
	for i := 1; i < len(rows); i++ {
		var u float64
		fmt.Sscan(rows[i][2], &u)
		if in[i][3] == "red" {
			red, nr = red+u, nr+1
		} else {
			other, no = other+u, no+1
		}
	}
	if !(red/nr > other/no+0.1) {
		t.Errorf("mean predicted uplift red %.3f, others %.3f", red/nr, other/no)
	}

	// Errors: missing label, missing columns.
	if code, _, _ = runCmd(t, "train", "--data", dir, "--table", tab); code != 2 {
		t.Errorf("--table without --label: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("x1,color\n1,red\n"), 0o644)
	if code, _, errOut = runCmd(t, "predict", "--model", model, "--in", bad); code != 1 || !strings.Contains(errOut, "x2") {
		t.Errorf("predict with a missing column: exit %d %s", code, errOut)
	}
}
