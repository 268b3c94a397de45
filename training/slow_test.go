//go:build slow

package training_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nudgehq/nudge/training"
)

// TestGenerated1M fits logistic regression and GBDT (xgboost's baseline settings: 200 trees,
// lr 0.1, depth 6, min hessian 1, L2 1, 255 bins) on the generated 1,000,000 x 30 table with
// the baselines' fold rule (NUDGE_FOLDS folds, default 5; NUDGE_ROWS rows), prints nudge's
// table and CPU seconds, and with NUDGE_BASELINE=1 also runs the python baseline (logreg, then
// xgb) on the same CSV, reporting its wall and CPU time. The figures in the package doc came
// from
//
//	NUDGE_FOLDS=2 NUDGE_BASELINE=1 go test -tags slow -run Generated1M -v -timeout 60m ./training
func TestGenerated1M(t *testing.T) {
	n := 1_000_000
	if s := os.Getenv("NUDGE_ROWS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	folds := 5
	if s := os.Getenv("NUDGE_FOLDS"); s != "" {
		folds, _ = strconv.Atoi(s)
	}
	ds := synth(n, 30, 2026)
	path := filepath.Join(t.TempDir(), "generated.csv")
	if err := writeSynthCSV(path, ds); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var results []*training.CVResult
	for _, l := range []training.Learner{
		training.NewLogistic(training.LogisticOptions{L2: 1}),
		training.NewGBDT(training.GBDTOptions{Trees: 200, LearningRate: 0.1, MaxDepth: 6, MinLeaf: 1, MinHessian: 1, Seed: 1}),
	} {
		cpu0 := cpuTime()
		r, err := training.CrossValidate(ctx, l, ds, folds)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: CPU (user+sys) for %d fits and evaluations: %v", l.Name(), folds, cpuTime()-cpu0)
		results = append(results, r)
	}
	var sb strings.Builder
	training.WriteCVTable(&sb, results...)
	t.Logf("nudge, %d rows x 30, %d folds (row i in fold i%%%d):\n%s", n, folds, folds, sb.String())
	if os.Getenv("NUDGE_BASELINE") == "" {
		return
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "shared", "baselines", "propensity_cv.py")
	t0 := time.Now()
	for _, m := range []string{"logreg", "xgb"} {
		cmd := exec.Command("/usr/bin/python3", script, path, "--label", "y", "--folds", strconv.Itoa(folds),
			"--categorical", "x27,x28,x29", "--models", m)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("baseline: %v\n%s", err, out)
		}
		ps := cmd.ProcessState
		t.Logf("baseline %s (wall %v, CPU user+sys %v incl. reading the CSV):\n%s", m, time.Since(t0).Round(time.Second),
			(ps.UserTime() + ps.SystemTime()).Round(time.Millisecond), out)
		t0 = time.Now()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeSynthCSV(path string, ds *training.Dataset) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(strings.Join(ds.Names, ",") + ",y\n")
	d := ds.D()
	buf := make([]byte, 0, 64)
	for i := 0; i < ds.N(); i++ {
		for j := 0; j < d; j++ {
			buf = strconv.AppendFloat(buf[:0], ds.X[i*d+j], 'g', -1, 64)
			w.Write(buf)
			w.WriteByte(',')
		}
		if ds.Y[i] == 1 {
			w.WriteString("1\n")
		} else {
			w.WriteString("0\n")
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
