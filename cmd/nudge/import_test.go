package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/serve"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// TestImportOtto imports the OTTO sample (clicks/carts/orders onto page_view/
// micro_conversion/macro_conversion), checks the counts through GET /v1/stats on the real
// server, and checks that a second import stores nothing new.
func TestImportOtto(t *testing.T) {
	sample := filepath.Join("..", "..", "..", "shared", "data", "otto_sessions_sample.csv")
	if _, err := os.Stat(sample); err != nil {
		t.Skipf("test data absent (%v): clone the repo with shared/ beside it", err)
	}
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "import", "--data", dir, "--site", "demo", sample)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "862 rows: 862 imported, 0 duplicates, 0 unlogged, 0 rejected") {
		t.Errorf("first import summary:\n%s", out)
	}
	code, out, errOut = runCmd(t, "import", "--data", dir, "--format", "otto", sample)
	if code != 0 {
		t.Fatalf("second import: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "862 rows: 0 imported, 862 duplicates") {
		t.Errorf("second import summary:\n%s", out)
	}

	p := startServe(t, dir)
	var st serve.StatsResponse
	getJSON(t, p.url+"/v1/stats", &st)
	want := map[string]int64{"page_view": 800, "micro_conversion": 52, "macro_conversion": 10}
	for typ, n := range want {
		if st.Events[typ] != n {
			t.Errorf("%s: %d events, want %d", typ, st.Events[typ], n)
		}
	}
	if st.TotalEvents != 862 || st.Duplicates != 862 {
		t.Errorf("stats %+v: want 862 events and 862 duplicates", st)
	}
	if st.Visitors != 20 {
		t.Errorf("%d visitors, want the sample's 20 sessions' visitors", st.Visitors)
	}
	var sr serve.SessionResponse
	getJSON(t, p.url+"/v1/sessions/otto-0", &sr)
	if len(sr.Events) == 0 || sr.Events[0].Type != "page_view" || sr.Events[0].TS != 1659304800025 {
		t.Errorf("session otto-0 starts with %+v", sr.Events[:min(1, len(sr.Events))])
	}
}

// TestImportRejections imports JSON Lines with bad rows and checks the report, and that a
// file with only bad rows or a missing file fails.
func TestImportRejections(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UnixMilli()
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"j%d","session_id":"s","anonymous_id":"a","type":"page_view","timestamp":%d}`, i, now-int64(60_000-i)))
	}
	lines[3] = `{"event_id":"bad-type","session_id":"s","anonymous_id":"a","type":"teleport","timestamp":1700000000000}`
	lines[7] = `{"event_id":"no-session","anonymous_id":"a","type":"page_view","timestamp":1700000000000}`
	lines[9] = `not json`
	good := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(good, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "import", "--data", filepath.Join(dir, "d"), "--show-rejections", "2", good)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"30 rows: 27 imported, 0 duplicates, 0 unlogged, 3 rejected",
		"events.jsonl:4: type: unknown event type",
		"events.jsonl:8: session_id: missing",
		"... and 1 more rejected rows",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("nope\n{\"event_id\":\"x\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "import", "--data", filepath.Join(dir, "d"), "--format", "jsonl", bad)
	if code == 0 || !strings.Contains(errOut, "every row (2) was rejected") {
		t.Errorf("all rows rejected: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "import", "--data", filepath.Join(dir, "d"), filepath.Join(dir, "missing.csv"))
	if code == 0 || !strings.Contains(errOut, "missing.csv") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, "import", "--data", filepath.Join(dir, "d"), "--site", "nope", good)
	if code == 0 || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("unknown site: exit %d, stderr %q", code, errOut)
	}
}
