package importer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeStore is an in-memory sink that dedupes on event_id, like the real store, and
// records every event it is given.
type fakeStore struct {
	mu     sync.Mutex
	byID   map[string]features.Event
	order  []string
	calls  int
	failAt int // fail on this call (1-based); 0 never
}

func newFakeStore() *fakeStore { return &fakeStore{byID: map[string]features.Event{}} }

func (s *fakeStore) sink(ctx context.Context, evs []features.Event) (int, int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls == s.failAt {
		return 0, 0, 0, errors.New("disk full")
	}
	stored, dups, unlogged := 0, 0, 0
	for _, e := range evs {
		if _, ok := s.byID[e.EventID]; ok {
			dups++
			continue
		}
		if !e.Consent {
			unlogged++
			continue
		}
		s.byID[e.EventID] = e
		s.order = append(s.order, e.EventID)
		stored++
	}
	return stored, dups, unlogged, nil
}

func opts(f Format) Options {
	return Options{Format: f, Now: func() time.Time { return now }, ConsentDefault: true, BatchSize: 3}
}

func TestJSONL(t *testing.T) {
	in := strings.Join([]string{
		`{"event_id":"e1","session_id":"s","anonymous_id":"a","type":"page_view","timestamp":"2024-01-02T03:04:05Z","props":{"path":"/x?token=secret"}}`,
		``,
		`{"event_id":"e2","session_id":"s","anonymous_id":"a","type":"macro_conversion","name":"purchase","value":12.5,"timestamp":1704164645000}`,
		`{"event_id":"e3","session_id":"s","anonymous_id":"a","type":"bogus","timestamp":1704164645000}`,
		`not json`,
		`{"event_id":"e4","session_id":"s","anonymous_id":"a","type":"click","timestamp":"2030-01-01T00:00:00Z"}`,
		`{"event_id":"e5","session_id":"s","anonymous_id":"a","type":"click","timestamp":1704164645001,"consent":false}`,
		`{"event_id":"e1","session_id":"s","anonymous_id":"a","type":"page_view","timestamp":"2024-01-02T03:04:05Z"}`,
		`{"event_id":"e6","type":"identify","timestamp":1704164645001}`,
	}, "\n") // no final newline: the last line still counts
	st := newFakeStore()
	var progress []Progress
	o := opts("")
	o.Progress = func(p Progress) { progress = append(progress, p) }
	rep, err := Import(context.Background(), strings.NewReader(in), o, st.sink)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 8 || rep.Imported != 2 || rep.Duplicates != 1 || rep.Unlogged != 1 || rep.Rejected != 4 {
		t.Fatalf("report = %+v", rep)
	}
	wantLines := []int{4, 5, 6, 9}
	for i, r := range rep.Rejections {
		if r.Line != wantLines[i] {
			t.Errorf("rejection %d at line %d, want %d: %v", i, r.Line, wantLines[i], r)
		}
	}
	if r := rep.Rejections[0]; r.Field != "type" || !strings.Contains(r.Reason, `unknown event type "bogus"`) {
		t.Errorf("rejection = %v", r)
	}
	if r := rep.Rejections[2]; r.Field != "timestamp" || !strings.Contains(r.Reason, "future") {
		t.Errorf("rejection = %v", r)
	}
	if r := rep.Rejections[3]; !strings.Contains(r.Reason, "session_id: missing") || !strings.Contains(r.Reason, "user_id: missing") {
		t.Errorf("rejection = %v", r)
	}
	if got := st.byID["e1"].Props["path"]; got != "/x?token=REDACTED" {
		t.Errorf("path = %q", got)
	}
	if e := st.byID["e2"]; e.Value != 12.5 || e.Type != features.MacroConversion {
		t.Errorf("e2 = %+v", e)
	}
	last := progress[len(progress)-1]
	if last.Bytes != int64(len(in)) || last.Rows != 8 || last.Imported != 2 || last.Rejected != 4 {
		t.Errorf("last progress = %+v", last)
	}
}

func TestJSONLLongLine(t *testing.T) {
	long := `{"event_id":"` + strings.Repeat("x", MaxLine) + `"}`
	good := `{"event_id":"e1","session_id":"s","anonymous_id":"a","type":"click","timestamp":1704164645000}`
	st := newFakeStore()
	rep, err := Import(context.Background(), strings.NewReader(long+"\n"+good+"\n"), opts(JSONL), st.sink)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 2 || rep.Imported != 1 || rep.Rejected != 1 || rep.Rejections[0].Line != 1 || !strings.Contains(rep.Rejections[0].Reason, "longer than") {
		t.Fatalf("report = %+v", rep)
	}
}

func TestCSV(t *testing.T) {
	in := "event_id,session_id,anonymous_id,user_id,type,timestamp,name,value,consent,props.path,props.device\n" +
		"c1,s1,a1,,page_view,2024-01-02T03:04:05Z,,,,/home?api_key=k,mobile\n" +
		"c2,s1,a1,u1,identify,1704164645000,,,true,,\n" +
		"c3,s1,a1,,macro_conversion,1704164646000,purchase,49.90,,,\n" +
		"c4,s1,a1,,macro_conversion,1704164646000,,,,,\n" + // no name
		"c5,s1,a1,,click,1704164646000,,NaN,,,\n" + // bad value
		"c6,s1,a1,,click,1704164646000,,,maybe,,\n" + // bad consent
		"c7,s1,a1,,click\n" + // wrong field count
		"c8,s1,a1,,click,1704164646000,,,false,,\n" + // no consent: unlogged
		"c9,s1,a1,,click,yesterday,,,,,\n" +
		"c10,s\xff,a1,,click,1704164646000,,,,,\n"
	st := newFakeStore()
	rep, err := Import(context.Background(), strings.NewReader(in), opts(CSV), st.sink)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 10 || rep.Imported != 3 || rep.Unlogged != 1 || rep.Rejected != 6 {
		t.Fatalf("report = %+v", rep)
	}
	want := []struct {
		line   int
		field  string
		reason string
	}{
		{5, "name", "missing"},
		{6, "value", "must be a number"},
		{7, "consent", "must be true or false"},
		{8, "", "wrong number of fields"},
		{10, "timestamp", "cannot parse"},
		{11, "session_id", "invalid UTF-8"},
	}
	for i, w := range want {
		r := rep.Rejections[i]
		if r.Line != w.line || r.Field != w.field || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("rejection %d = %v, want line %d %s: %s", i, r, w.line, w.field, w.reason)
		}
	}
	c1 := st.byID["c1"]
	if c1.Props["path"] != "/home?api_key=REDACTED" || c1.Props["device"] != "mobile" || c1.Type != features.PageView {
		t.Errorf("c1 = %+v", c1)
	}
	if c2 := st.byID["c2"]; c2.UserID != "u1" || c2.TS != 1704164645000 || len(c2.Props) != 0 {
		t.Errorf("c2 = %+v", c2)
	}
	if c3 := st.byID["c3"]; c3.Value != 49.9 || c3.Name != "purchase" {
		t.Errorf("c3 = %+v", c3)
	}
}

func TestCSVBadHeader(t *testing.T) {
	tests := []struct{ name, header, want string }{
		{"unknown column", "event_id,session_id,anonymous_id,type,timestamp,colour", `unknown column "colour"`},
		{"missing column", "event_id,session_id,type,timestamp", `missing column "anonymous_id"`},
		{"duplicate", "event_id,event_id,session_id,anonymous_id,type,timestamp", `duplicate column "event_id"`},
		{"empty props key", "event_id,session_id,anonymous_id,type,timestamp,props.", "empty props key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Import(context.Background(), strings.NewReader(tt.header+"\n"), opts(CSV), newFakeStore().sink)
			if !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		head string
		want Format
	}{
		{`{"event_id":1}`, JSONL},
		{"\n  {", JSONL},
		{"session,aid,ts,type\n0,1,2,clicks", Otto},
		{"session,aid,ts,type\r\n0,1,2,clicks", Otto},
		{"event_id,session_id", CSV},
		{"\xef\xbb\xbfsession,aid,ts,type\n", Otto},
	}
	for _, tt := range tests {
		if got := Detect([]byte(tt.head)); got != tt.want {
			t.Errorf("Detect(%q) = %q, want %q", tt.head, got, tt.want)
		}
	}
	for name, want := range map[string]Format{"a.jsonl": JSONL, "b.NDJSON": JSONL, "c.csv": CSV, "d.txt": ""} {
		if got := FormatFromName(name); got != want {
			t.Errorf("FormatFromName(%q) = %q, want %q", name, got, want)
		}
	}
	if _, err := Import(context.Background(), strings.NewReader(""), Options{Format: "xml"}, newFakeStore().sink); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestSinkErrorStopsImport(t *testing.T) {
	var b strings.Builder
	for i := range 10 {
		fmt.Fprintf(&b, `{"event_id":"e%d","session_id":"s","anonymous_id":"a","type":"click","timestamp":1704164645000}`+"\n", i)
	}
	st := newFakeStore()
	st.failAt = 2
	rep, err := Import(context.Background(), strings.NewReader(b.String()), opts(JSONL), st.sink)
	if !errors.Is(err, ErrSink) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	if rep.Imported != 3 {
		t.Errorf("imported %d before the failure, want 3", rep.Imported)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := `{"event_id":"e","session_id":"s","anonymous_id":"a","type":"click","timestamp":1704164645000}` + "\n"
	_, err := Import(ctx, strings.NewReader(in), opts(JSONL), newFakeStore().sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestOttoRows(t *testing.T) {
	in := "session,aid,ts,type\n" +
		"7,100,1659304800025,clicks\n" +
		"7,100,1659304800025,clicks\n" + // same row twice: distinct events
		"7,200,1659304900000,carts\n" +
		"7,200,1659305000000,orders\n" +
		"7,x,1659305000000,orders\n" +
		"7,200,1659305000000,returns\n"
	st := newFakeStore()
	rep, err := Import(context.Background(), strings.NewReader(in), opts(""), st.sink)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 6 || rep.Imported != 4 || rep.Rejected != 2 {
		t.Fatalf("report = %+v", rep)
	}
	if r := rep.Rejections[0]; r.Line != 6 || r.Field != "aid" {
		t.Errorf("rejection = %v", r)
	}
	if r := rep.Rejections[1]; r.Line != 7 || r.Field != "type" || !strings.Contains(r.Reason, "returns") {
		t.Errorf("rejection = %v", r)
	}
	e := st.byID["otto-7-1659304800025-100-clicks-1"]
	if e.Type != features.PageView || e.SessionID != "otto-7" || e.AnonymousID != "otto-7" || e.Props["path"] != "/product/100" || e.Props["page_group"] != "product" || e.TS != 1659304800025 {
		t.Errorf("second click = %+v", e)
	}
	if _, ok := st.byID["otto-7-1659304800025-100-clicks-0"]; !ok {
		t.Errorf("first click missing: %v", st.order)
	}
	c := st.byID["otto-7-1659304900000-200-carts-0"]
	if c.Type != features.MicroConversion || c.Name != "add_to_cart" || c.Props["product"] != "200" {
		t.Errorf("cart = %+v", c)
	}
	o := st.byID["otto-7-1659305000000-200-orders-0"]
	if o.Type != features.MacroConversion || o.Name != "purchase" || o.Value != 0 || o.Props["product"] != "200" {
		t.Errorf("order = %+v", o)
	}
}

// sharedData returns the path of a file in ../../../shared/data, skipping when absent.
func sharedData(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test data %s not found (the repo's sibling shared/data directory): %v", p, err)
	}
	return p
}

func TestOttoSampleFile(t *testing.T) {
	path := sharedData(t, "otto_sessions_sample.csv")
	st := newFakeStore()
	o := Options{Now: func() time.Time { return now }, ConsentDefault: true}
	run := func() Report {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rep, err := Import(context.Background(), f, o, st.sink)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run()
	if rep.Rows != 862 || rep.Imported != 862 || rep.Rejected != 0 || rep.Duplicates != 0 {
		t.Fatalf("first import: %+v", rep)
	}
	counts := map[features.EventType]int{}
	for _, e := range st.byID {
		counts[e.Type]++
	}
	if counts[features.PageView] != 800 || counts[features.MicroConversion] != 52 || counts[features.MacroConversion] != 10 || len(counts) != 3 {
		t.Fatalf("types = %v", counts)
	}
	// Re-import: every event id is deterministic, so nothing is new.
	rep2 := run()
	if rep2.Imported != 0 || rep2.Duplicates != 862 || rep2.Rows != 862 {
		t.Fatalf("re-import: %+v", rep2)
	}
}

// BenchmarkImportJSONL imports 10,000 JSON Lines events into a discarding sink.
//
//	go test ./data/importer -run '^$' -bench ImportJSONL -benchmem
func BenchmarkImportJSONL(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, `{"event_id":"e%d","session_id":"s%d","anonymous_id":"a%d","type":"page_view","timestamp":%d,"props":{"path":"/p/%d","device":"mobile"}}`+"\n", i, i/20, i/20, 1704164645000+int64(i), i)
	}
	in := sb.String()
	discard := func(ctx context.Context, evs []features.Event) (int, int, int, error) { return len(evs), 0, 0, nil }
	o := Options{Format: JSONL, Now: func() time.Time { return now }, ConsentDefault: true}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rep, err := Import(context.Background(), strings.NewReader(in), o, discard)
		if err != nil || rep.Imported != 10000 {
			b.Fatal(err, rep)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10000), "ns/event")
}
