package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
)

// benchBody is a realistic batch of n events (page views, clicks, conversions with props).
func benchBody(n int) []byte {
	var parts []string
	types := []string{`"page_view"`, `"click"`, `"micro_conversion"`, `"page_view"`}
	for i := range n {
		parts = append(parts, ev(map[string]string{
			"event_id":     fmt.Sprintf(`"01J9ZK3%08d"`, i),
			"session_id":   `"sess-8f2c1d9a"`,
			"anonymous_id": `"anon-5b7e0c3f2a91"`,
			"type":         types[i%len(types)],
			"name":         `"add_to_cart"`,
			"timestamp":    fmt.Sprint(now.UnixMilli() - int64(n-i)*1000),
			"props":        fmt.Sprintf(`{"path":"/product/%d?utm_source=news","title":"Blue \\\"shoes\\\", size %d \\u00e9","device":"mobile","engaged_ms":%d,"scroll_pct":45}`, i, i%12, i*37),
		}))
	}
	return []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
}

// BenchmarkDecodeBatch decodes a 100-event batch (8.4 KB: ids, a page view, click or
// micro conversion, five props including an escaped title) with each string decoder.
//
//	go test ./data/wire -run '^$' -bench 'DecodeBatch|Valid' -benchmem
//
// Figures on the shared 2-core machine (noisy: best of 3 runs; allocations are exact):
//
//	map-based decoder (commit aaf4673), goccy/go-json   13.2 µs/event  84 allocs  5.4 KB
//	map-based decoder (commit aaf4673), encoding/json   16.3 µs/event  77 allocs  3.7 KB
//	scanner, valid=encoding/json, unmarshal=goccy        3.3 µs/event  19 allocs  0.8 KB
//	scanner, valid=encoding/json, unmarshal=std          3.7 µs/event  21 allocs  1.0 KB
//	scanner, valid=goccy (allocates), unmarshal=goccy    7.7 µs/event  67 allocs  2.6 KB
//	  + one string block per event (decoder.keep)        5.1-5.5 µs/event  8 allocs  1.0 KB
//	    (same run, before: 6.5-7.8 µs/event, 19 allocs; the machine was loaded, ±50%)
//	BenchmarkValid: validJSON 690-720 MB/s, encoding/json.Valid 170-240 MB/s, 0 allocs
//
// Since the single-pass decoder the syntax check is fused with the scan (one pass over the body, see
// DecodeBatch), so there is no checker to choose; "fused" names the sub-benchmarks that
// replaced valid=validJSON (figures in BenchmarkDecodeBatchIngest's comment).
func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBody(100)
	libs := []struct {
		name string
		fn   func([]byte, any) error
	}{
		{"fused/unmarshal=goccy", gojson.Unmarshal},
		{"fused/unmarshal=std", json.Unmarshal},
	}
	for _, lib := range libs {
		b.Run(lib.name, func(b *testing.B) {
			saved := unmarshal
			unmarshal = lib.fn
			defer func() { unmarshal = saved }()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				bt, err := DecodeBatch(body, now, DefaultLimits(), true)
				if err != nil || len(bt.Events) != 100 {
					b.Fatalf("%v %d %v", err, len(bt.Events), bt.Errors)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
		})
	}
}

// BenchmarkValid compares the two JSON validity checkers on a 100-event batch.
func BenchmarkValid(b *testing.B) {
	body := benchBody(100)
	for _, c := range []struct {
		name string
		fn   func([]byte) bool
	}{{"validJSON", validJSON}, {"encoding-json", json.Valid}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !c.fn(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// ingestBody is a batch shaped exactly like the bodies of `nudge bench ingest` (benchBodies
// in cmd/nudge/bench.go, copied here): n events of ~200 bytes, sessions of 20 events (page
// views, clicks, a micro conversion, now and then a purchase), two props, no escapes.
func ingestBody(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(ingestEvent(i))
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// ingestEvent is event i of ingestBody.
func ingestEvent(i int) []byte {
	base := now.Add(-time.Hour).UnixMilli()
	sess, k := i/20, i%20
	typ, name := "page_view", ""
	switch {
	case k == 19 && sess%7 == 0:
		typ, name = "macro_conversion", "purchase"
	case k == 12:
		typ, name = "micro_conversion", "add_to_cart"
	case k%3 == 2:
		typ, name = "click", "product_tile"
	}
	return fmt.Appendf(nil, `{"event_id":"e%d","session_id":"s%d","anonymous_id":"v%d","type":%q,`+
		`"timestamp":%d,"name":%q,"props":{"path":"/p/%d","device":"desktop"}}`,
		i, sess, sess/3, typ, base+int64(sess%3000)*1000+int64(k)*1000, name, k)
}

// BenchmarkDecodeBatchIngest decodes the 100-event batch that `nudge bench ingest` sends
// (ingestBody) with the package's own checker and string decoder.
//
//	go test ./data/wire -run '^$' -bench DecodeBatchIngest -benchmem -count 8
//
// A/B of the single-pass decoder against the two-pass one (commit a8a1d45, this file copied
// into its worktree), 8 alternating runs each, benchstat medians, load average 1.9-3.1 on
// the shared 2-core machine:
//
//	                    a8a1d45        single pass    ratio
//	DecodeBatchIngest   2168 ns/event  1135 ns/event  0.52   (±21% / ±11%)
//	                    71.2 KiB/op    52.9 KiB/op    0.74
//	                    310 allocs/op  302 allocs/op  0.97   (map header and group, string block per event)
//	DecodeBatch         4139 ns/event  1792 ns/event  0.43   (escaped title, numeric props)
//	                    809 allocs/op  402 allocs/op  0.50
//	DecodeEvent         1799 ns/event   922 ns/event  0.51
func BenchmarkDecodeBatchIngest(b *testing.B) {
	body := ingestBody(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		bt, err := DecodeBatch(body, now, DefaultLimits(), true)
		if err != nil || len(bt.Events) != 100 {
			b.Fatalf("%v %d %v", err, len(bt.Events), bt.Errors)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
}

// BenchmarkDecodeEvent decodes the events of ingestBody one at a time, as JSON Lines import
// does (DecodeEvent).
func BenchmarkDecodeEvent(b *testing.B) {
	var lines [][]byte
	size := 0
	for i := range 100 {
		lines = append(lines, ingestEvent(i))
		size += len(lines[i])
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if _, errs := DecodeEvent(l, now, DefaultLimits(), true); errs != nil {
				b.Fatal(errs)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
}
