package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchIngestCommand runs a small `nudge bench ingest` end to end and checks that every
// event was sent and both rates were measured. It asserts no speed (see BenchmarkIngestHTTP).
func TestBenchIngestCommand(t *testing.T) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"bench", "ingest", "--events", "3000", "--batch", "100", "--concurrency", "4",
		"--rounds", "2", "--warmup", "1", "--dir", t.TempDir()}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	m := regexp.MustCompile(`(\d+) events in (\d+) requests`).FindStringSubmatch(out.String())
	if m == nil || m[1] != "3000" || m[2] != "30" {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
	if n := len(regexp.MustCompile(`(?m)^  ratio http/raw: [0-9.]+$`).FindAllString(out.String(), -1)); n != 3 {
		t.Errorf("%d rounds printed, want 3 (a warm-up round and 2):\n%s", n, out.String())
	}
	for _, order := range []string{"warm-up round 1 (raw first, not counted)", "\nround 1 (http first)", "round 2 (raw first)", "median of 2 rounds"} {
		if !strings.Contains(out.String(), order) {
			t.Errorf("no %q:\n%s", order, out.String())
		}
	}
	r := regexp.MustCompile(`median ratio http/raw: ([0-9.]+)`).FindStringSubmatch(out.String())
	if r == nil {
		t.Fatalf("no ratio:\n%s", out.String())
	}
	if v, err := strconv.ParseFloat(r[1], 64); err != nil || v <= 0 {
		t.Errorf("ratio %q", r[1])
	}
}

// BenchmarkIngestHTTP measures sustained durable ingestion over HTTP on loopback in batches
// of 100 events from 16 clients, and the raw Badger WriteBatch baseline on the same events.
// One op is one batch of 100 events.
//
//	go test -run '^$' -bench IngestHTTP -benchtime 2000x ./cmd/nudge
func BenchmarkIngestHTTP(b *testing.B) {
	o := benchOptions{events: b.N * 100, batch: 100, concurrency: 16, rounds: 1, timeout: 10 * time.Minute, dir: b.TempDir()}
	b.ResetTimer()
	rep, err := benchIngest(context.Background(), o, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.median(benchResult.httpRate), "events/s")
	b.ReportMetric(rep.median(benchResult.rawRate), "raw-events/s")
	b.ReportMetric(rep.median(benchResult.ratio), "ratio")
}

// TestBenchIngestBadFlags: options that cannot run exit 2 with a message, before any work.
func TestBenchIngestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--client", "bogus"},
		{"--rounds", "0"},
		{"--events", "-1"},
		{"--warmup", "-1"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"bench", "ingest", "--dir", t.TempDir()}, args...), nil, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "bench: --") || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}
