package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/training/report"
)

// TestReportCommand runs nudge report on a small simulated data directory: text, json, csv
// (one section and all), --out, a day range, and bad input.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	simulateInto(t, dir, 200, 7) // starts 2026-01-05, random policy, every decision logged

	code, out, errOut := runCmd(t, "report", "--data", dir)
	if code != 0 {
		t.Fatalf("text: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"nudge report: site demo", "Overview", "sessions", "Funnel", "browse", "checkout",
		"Micro conversions", "Lift", "discount10", "Attribution", "time_decay", "Notes"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runCmd(t, "report", "--data", dir, "--format", "json")
	if code != 0 {
		t.Fatalf("json: exit %d\n%s", code, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	var sessions int64
	for _, p := range r.Series {
		sessions += p.Sessions
	}
	if r.Version != report.FormatVersion || r.Site != "demo" || r.Group != "day" || r.Overview.Sessions.Value == 0 ||
		float64(sessions) != r.Overview.Sessions.Value || len(r.Lift) < 2 || len(r.Attribution) != 5 {
		t.Fatalf("json report: version %d site %s group %s sessions %v (series %d) lift %d attribution %d",
			r.Version, r.Site, r.Group, r.Overview.Sessions.Value, sessions, len(r.Lift), len(r.Attribution))
	}

	code, out, errOut = runCmd(t, "report", "--data", dir, "--format", "csv", "--section", "funnel")
	if code != 0 {
		t.Fatalf("csv: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "# nudge report v1 section=funnel site=demo from=") ||
		lines[1] != "phase,kind,sessions,of_first,from_previous,drop_off" || len(lines) != 2+4 {
		t.Fatalf("csv funnel:\n%s", out)
	}

	// All sections into a file, a day range in the site's zone (UTC).
	file := filepath.Join(t.TempDir(), "report.csv")
	code, out, errOut = runCmd(t, "report", "--data", dir, "--format", "csv", "--section", "all", "--out", file,
		"--from", "2026-01-06", "--to", "2026-01-08")
	if code != 0 || out != "" {
		t.Fatalf("csv all: exit %d\nstdout %q\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "# nudge report v1 section="); n != len(report.Sections) {
		t.Errorf("%d sections in the file, want %d", n, len(report.Sections))
	}
	if !strings.Contains(string(b), "from=2026-01-06T00:00:00Z to=2026-01-08T00:00:00Z") {
		t.Errorf("range not in the header:\n%s", b[:200])
	}
	if !strings.Contains(string(b), "\n2026-01-07T23:00:00Z,") {
		t.Errorf("a two-day range has hourly buckets:\n%s", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the output: %v", entries)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, "--format \"xml\""},
		{[]string{"--format", "csv"}, "needs --section"},
		{[]string{"--format", "csv", "--section", "nope"}, "--section \"nope\""},
		{[]string{"--section", "funnel"}, "--section is for --format csv"},
		{[]string{"--group", "month"}, "--group \"month\""},
		{[]string{"--from", "yesterday"}, "--from \"yesterday\""},
		{[]string{"--from", "2026-01-08", "--to", "2026-01-06"}, "is not before"},
		{[]string{"--budget", "2"}, "--budget 2"},
		{[]string{"--outcome", "forever"}, "outcome \"forever\""},
		{[]string{"--site", "nosuch"}, "no such site"},
		{[]string{"--server", "http://127.0.0.1:1"}, "needs --key"},
		{[]string{"--server", "ftp://x", "--key", "k"}, "want a URL"},
		{[]string{"--server", "http://127.0.0.1:1", "--key", "k", "--outcome", "session"}, "--outcome is not supported with --server"},
		{[]string{"--out", filepath.Join(dir, "no", "such", "dir", "r.txt")}, "--out"},
		{[]string{"--server", "http://127.0.0.1:1", "--key", "k", "--data", dir}, "--data and --server exclude each other"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"report", "--data", dir}, c.args...)
			if c.args[0] == "--server" {
				args = append([]string{"report"}, c.args...)
			}
			code, out, errOut := runCmd(t, args...)
			if code == 0 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q, want non-zero and %q (stdout %d bytes)", code, errOut, c.want, len(out))
			}
			if out != "" {
				t.Errorf("bad input printed a report: %q", out[:min(len(out), 200)])
			}
		})
	}
	if code, _, errOut := runCmd(t, "report", "--data", filepath.Join(dir, "absent")); code == 0 || !strings.Contains(errOut, "absent") {
		t.Errorf("missing data directory: exit %d %q", code, errOut)
	}
}

// TestReportServer runs nudge report --server against a stand-in for GET /v1/report (the
// real endpoint belongs to serve/dashboard's wiring): the query parameters, the admin key
// and the rendering of the fetched report; a refused key is a non-zero exit with the
// server's message.
func TestReportServer(t *testing.T) {
	rep := &report.Report{Version: report.FormatVersion, Site: "demo", Group: "day", TimeZone: "UTC",
		From: time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC),
		Funnel: []report.FunnelStep{{Phase: "browse", Kind: "phase", Sessions: 10, OfFirst: 1, FromPrevious: 0.5, DropOff: 0.5}}}
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer ak_demo_0123456789abcdef" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"wrong admin key"}}`))
			return
		}
		got = append(got, req.URL.Path+"?"+req.URL.RawQuery)
		var buf bytes.Buffer
		_ = rep.WriteJSON(&buf)
		_, _ = w.Write(buf.Bytes())
	}))
	defer srv.Close()

	code, out, errOut := runCmd(t, "report", "--server", srv.URL, "--key", "ak_demo_0123456789abcdef", "--site", "demo",
		"--from", "2026-01-06", "--to", "2026-01-08", "--group", "day", "--format", "csv", "--section", "funnel", "--budget", "0.2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(got) != 1 || got[0] != "/v1/report?budget=0.2&format=json&from=2026-01-06&group=day&site=demo&to=2026-01-08" {
		t.Errorf("requests %q", got)
	}
	if !strings.Contains(out, "browse,phase,10,1,0.5,0.5") {
		t.Errorf("csv from the server's report:\n%s", out)
	}
	code, _, errOut = runCmd(t, "report", "--server", srv.URL, "--admin-key", "ak_wrong_0123456789abcdef")
	if code == 0 || !strings.Contains(errOut, "wrong admin key") {
		t.Errorf("refused key: exit %d %q", code, errOut)
	}
}

// TestReportRealServer runs nudge report --server against the real GET /v1/report of
// serve (with the wiring's reportAdapter) on a simulated store: the CLI renders what the server
// computed, the same figures as --data; a bad range is the server's 400 message.
func TestReportRealServer(t *testing.T) {
	dir := t.TempDir()
	simulateInto(t, dir, 150, 5)
	code, local, errOut := runCmd(t, "report", "--data", dir, "--format", "csv", "--section", "funnel", "--from", "2026-01-06", "--to", "2026-01-09")
	if code != 0 {
		t.Fatalf("local: exit %d %s", code, errOut)
	}
	ctx := context.Background()
	cfg := config.Demo()
	st, err := openStore(ctx, cfg, storeOptions{dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(serve.Options{Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(wire.DefaultLimits()),
		Reporter: reportAdapter{st, cfg}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = srv.Close(cctx)
		_ = st.Close(cctx)
	})
	base := "http://" + srv.Addr()
	key := cfg.Sites[0].AdminKey
	code, remote, errOut := runCmd(t, "report", "--server", base, "--key", key, "--format", "csv", "--section", "funnel",
		"--from", "2026-01-06", "--to", "2026-01-09")
	if code != 0 {
		t.Fatalf("remote: exit %d %s", code, errOut)
	}
	if remote != local || !strings.Contains(remote, "browse,phase,") {
		t.Errorf("--server and --data differ:\n%s\n%s", remote, local)
	}
	code, out, errOut := runCmd(t, "report", "--server", base, "--key", key, "--format", "json", "--budget", "0.2")
	var r report.Report
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Site != "demo" || r.Overview.Sessions.Value == 0 {
		t.Errorf("remote json with --budget: exit %d %s\n%.300s", code, errOut, out)
	}
	code, _, errOut = runCmd(t, "report", "--server", base, "--key", key, "--from", "2026-01-09", "--to", "2026-01-06")
	if code == 0 || !strings.Contains(errOut, "400") {
		t.Errorf("bad range through the server: exit %d %q", code, errOut)
	}
}
