package main

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
)

// TestDemoExitAfterSetup runs `nudge demo --exit-after-setup` small, through run (flags and
// all), then reopens its data directory: both models are registered and promoted, and every
// simulated decision is in the decision log.
func TestDemoExitAfterSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("demo setup takes several seconds; run without -short")
	}
	dir := t.TempDir()
	var out, errOut strings.Builder
	code := run(context.Background(), []string{"demo", "--exit-after-setup", "--addr", "127.0.0.1:0", "--data", dir,
		"--visitors", "300", "--days", "14", "--seed", "3", "--learner", "logistic"}, nil, &out, &errOut)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	m := regexp.MustCompile(`simulated (\d+) sessions, (\d+) events, (\d+) decisions`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no simulation summary in the output")
	}
	decisions, _ := strconv.Atoi(m[3])
	// The evaluation phase decides for more sessions, logged too.
	ev := regexp.MustCompile(`live policy: \d+ of (\d+) sessions treated`).FindStringSubmatch(out.String())
	if ev == nil {
		t.Fatal("no evaluation line in the output")
	}
	evalN, _ := strconv.Atoi(ev[1])
	for _, want := range []string{"promoted and live: propensity v1, uplift v2", "auc=", "ope_snips=", "live policy: ", "of the oracle's",
		"curl -s -X POST http://127.0.0.1:", `"session_id": "sim3-s`, "/v1/models", "setup done in",
		"/dashboard/   (log in with the admin key below)", "Admin key:      ak_demo_0123456789abcdef", "/v1/report?range=28d"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	cfg := config.Demo()
	st, err := openStore(context.Background(), cfg, storeOptions{dir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	for kind, v := range map[string]int{"propensity": 1, "uplift": 2} {
		rec, err := st.Promoted(ctx, "demo", kind)
		if err != nil || rec.Version != v || rec.Rows == 0 || len(rec.Metrics) == 0 {
			t.Errorf("promoted %s: %+v %v", kind, rec, err)
		}
	}
	n, explored, probs := 0, 0, 0
	err = st.Decisions(ctx, "demo", 0, 0, func(r *store.DecisionRecord) error {
		n++
		if r.Group == "explore" {
			explored++
		}
		if r.Probability > 0 && r.Probability <= 1 {
			probs++
		}
		return nil
	})
	if err != nil || n != decisions+evalN || decisions < 200 || evalN == 0 {
		t.Errorf("%d decisions logged, %d+%d simulated (%v)", n, decisions, evalN, err)
	}
	if probs != n || explored < decisions/2 {
		t.Errorf("%d decisions: %d explored, %d with a probability in (0, 1]", n, explored, probs)
	}
}
