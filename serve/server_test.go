package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/serve"
)

const (
	writeKey  = "wk_demo_0123456789abcdef"
	adminKey  = "ak_demo_0123456789abcdef"
	writeKey2 = "wk_other_0123456789abcdef"
	adminKey2 = "ak_other_0123456789abcdef"
	origin    = "http://localhost:8080"
)

// testConfig is the demo site plus a second site, "other", with its own keys.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Demo()
	if s, ok := cfg.Site("demo"); !ok || s.WriteKey != writeKey || s.AdminKey != adminKey {
		t.Fatalf("demo site keys changed; update the test constants")
	}
	other := cfg.Sites[0]
	other.ID, other.WriteKey, other.AdminKey = "other", writeKey2, adminKey2
	other.AllowedOrigins = []string{"https://other.example"}
	cfg.Sites = append(cfg.Sites, other)
	return cfg
}

type testServer struct {
	url   string
	store *fakeStore
	srv   *serve.Server
}

func start(t *testing.T, mod func(*serve.Options)) *testServer {
	t.Helper()
	st := newFakeStore()
	opts := serve.Options{
		Config: testConfig(t), Events: st, Decode: fakeDecode(5),
		Now: func() time.Time { return time.UnixMilli(1_700_000_000_000) },
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := serve.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testServer{url: "http://" + srv.Addr(), store: st, srv: srv}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) errorBody(t *testing.T) serve.ErrorInfo {
	t.Helper()
	var eb serve.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("status %d: body is not a JSON error: %q (%v)", r.status, r.body, err)
	}
	return eb.Error
}

func do(t *testing.T, method, url, key string, body string, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

func batch(ids ...string) string {
	var parts []string
	for i, id := range ids {
		parts = append(parts, fmt.Sprintf(`{"event_id":%q,"session_id":"s1","anonymous_id":"a1","type":"page_view","ts":%d}`,
			id, 1_700_000_000_000+int64(i)))
	}
	return `{"events":[` + strings.Join(parts, ",") + `]}`
}

func TestAuthMatrix(t *testing.T) {
	ts := start(t, nil)
	// Seed a session so admin reads succeed when authorised.
	if r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("seed")); r.status != 200 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	endpoints := []struct {
		name, method, path string
		admin              bool
	}{
		{"events", "POST", "/v1/events", false},
		{"session", "GET", "/v1/sessions/s1", true},
		{"features", "GET", "/v1/sessions/s1/features", true},
		{"stats", "GET", "/v1/stats", true},
	}
	keys := []struct {
		name     string
		key      string
		query    string
		hdr      []string
		writeOK  int // status for the ingest endpoint
		adminOK  int // status for admin endpoints
		wantCode string
	}{
		{"no key", "", "", nil, 401, 401, "unauthorized"},
		{"garbage key", "nope", "", nil, 401, 401, "unauthorized"},
		{"not bearer", "", "", []string{"Authorization", "Basic " + adminKey}, 401, 401, "unauthorized"},
		{"write key", writeKey, "", nil, 200, 403, ""},
		{"admin key", adminKey, "", nil, 200, 200, ""},
		{"write key names own site", writeKey, "?site=demo", nil, 200, 403, ""},
		{"write key names other site", writeKey, "?site=other", nil, 403, 403, "forbidden"},
		{"admin key names other site", adminKey, "?site=other", nil, 403, 403, "forbidden"},
		{"other site's admin key names demo", adminKey2, "?site=demo", nil, 403, 403, "forbidden"},
		{"write key in query", "", "?key=" + writeKey, nil, 200, 403, ""},
		{"admin key in query refused", "", "?key=" + adminKey, nil, 401, 401, "unauthorized"},
		{"write key from allowed origin", writeKey, "", []string{"Origin", origin}, 200, 403, ""},
		{"write key from foreign origin", writeKey, "", []string{"Origin", "https://evil.example"}, 403, 403, "forbidden"},
		{"admin key with origin", adminKey, "", []string{"Origin", "https://evil.example"}, 200, 200, ""},
	}
	for _, ep := range endpoints {
		for i, k := range keys {
			t.Run(ep.name+"/"+k.name, func(t *testing.T) {
				body := ""
				if ep.method == "POST" {
					body = batch(fmt.Sprintf("auth-%s-%d", ep.name, i))
				}
				r := do(t, ep.method, ts.url+ep.path+k.query, k.key, body, k.hdr...)
				want := k.writeOK
				if ep.admin {
					want = k.adminOK
				}
				if r.status != want {
					t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
				}
				if want >= 400 {
					e := r.errorBody(t)
					if k.wantCode != "" && e.Code != k.wantCode {
						t.Errorf("code %q, want %q", e.Code, k.wantCode)
					}
					if want == 401 && r.header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
				}
			})
		}
	}
}

func TestIngestValidation(t *testing.T) {
	ts := start(t, nil)
	mixed := `{"events":[
		{"event_id":"ok1","session_id":"s1","anonymous_id":"a1","type":"page_view"},
		{"session_id":"s1","type":"page_view"},
		{"event_id":"bad-type","session_id":"s1","type":"teleport"},
		{"event_id":"ok2","session_id":"s1","anonymous_id":"a1","type":"click"}]}`
	r := do(t, "POST", ts.url+"/v1/events", writeKey, mixed)
	if r.status != 200 {
		t.Fatalf("mixed batch: %d %s", r.status, r.body)
	}
	var got serve.IngestResponse
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := serve.IngestResponse{Received: 4, Accepted: 2, Stored: 2, Rejected: []serve.RejectedEvent{
		{Index: 1, Field: "event_id", Reason: "missing"},
		{Index: 2, EventID: "bad-type", Field: "type", Reason: "unknown event type"},
	}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if n := ts.store.count("demo"); n != 2 {
		t.Errorf("store holds %d events, want 2", n)
	}

	tests := []struct {
		name, body, code string
		details          int
	}{
		{"no valid event", `{"events":[{"type":"page_view"},{"event_id":"x","type":"nope"}]}`, "no_valid_events", 2},
		{"empty batch", `{"events":[]}`, "no_valid_events", 0},
		{"malformed json", `{"events":[`, "malformed_body", 0},
		{"not json", `hello`, "malformed_body", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.store.count("demo")
			r := do(t, "POST", ts.url+"/v1/events", writeKey, tt.body)
			if r.status != 400 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			e := r.errorBody(t)
			if e.Code != tt.code {
				t.Errorf("code %q, want %q", e.Code, tt.code)
			}
			var n int
			if d, ok := e.Details.([]any); ok {
				n = len(d)
			}
			if n != tt.details {
				t.Errorf("%d details, want %d: %s", n, tt.details, r.body)
			}
			if after := ts.store.count("demo"); after != before {
				t.Errorf("a rejected batch changed the store: %d -> %d events", before, after)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	ts := start(t, func(o *serve.Options) { o.BodyLimit = 2048 })
	big := `{"events":[{"event_id":"big","type":"page_view","pad":"` + strings.Repeat("x", 4096) + `"}]}`
	t.Run("body over limit", func(t *testing.T) {
		r := do(t, "POST", ts.url+"/v1/events", writeKey, big)
		if r.status != 413 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if e := r.errorBody(t); e.Code != "body_too_large" || !strings.Contains(e.Message, "2048") {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("chunked body over limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(big))
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", ts.url+"/v1/events", pr) // no Content-Length
		req.Header.Set("Authorization", "Bearer "+writeKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 413 {
			t.Fatalf("status %d: %s", res.StatusCode, b)
		}
		resp{res.StatusCode, res.Header, b}.errorBody(t)
	})
	t.Run("too many events", func(t *testing.T) {
		r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("1", "2", "3", "4", "5", "6"))
		if r.status != 413 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if e := r.errorBody(t); e.Code != "too_many_events" {
			t.Errorf("error %+v", e)
		}
	})
	if n := ts.store.count("demo"); n != 0 {
		t.Errorf("store holds %d events after refused batches", n)
	}
}

func TestContentTypes(t *testing.T) {
	ts := start(t, nil)
	for _, tt := range []struct {
		ct     string
		status int
	}{
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"text/plain;charset=UTF-8", 200}, // navigator.sendBeacon with a string body
		{"application/x-www-form-urlencoded", 415},
		{"multipart/form-data; boundary=x", 415},
	} {
		t.Run(tt.ct, func(t *testing.T) {
			r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("ct-"+tt.ct), "Content-Type", tt.ct)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != 200 {
				r.errorBody(t)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	ts := start(t, nil)
	t.Run("preflight from allowed origin", func(t *testing.T) {
		r := do(t, "OPTIONS", ts.url+"/v1/events", "", "", "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
		if r.status != http.StatusNoContent {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Allow-Origin %q", got)
		}
		if got := strings.ToLower(r.header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "authorization") {
			t.Errorf("Allow-Headers %q", got)
		}
	})
	t.Run("preflight from unknown origin", func(t *testing.T) {
		r := do(t, "OPTIONS", ts.url+"/v1/events", "", "", "Origin", "https://evil.example",
			"Access-Control-Request-Method", "POST")
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin %q for an unknown origin", got)
		}
	})
	t.Run("sendBeacon: text/plain, key in query", func(t *testing.T) {
		r := do(t, "POST", ts.url+"/v1/events?key="+writeKey, "", batch("beacon"),
			"Content-Type", "text/plain;charset=UTF-8", "Origin", origin)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Allow-Origin %q", got)
		}
	})
}

func TestOverloaded(t *testing.T) {
	ts := start(t, nil)
	ts.store.mu.Lock()
	ts.store.overloaded = true
	ts.store.mu.Unlock()
	r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("o1"))
	if r.status != 503 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if e := r.errorBody(t); e.Code != "overloaded" {
		t.Errorf("error %+v", e)
	}
	ts.store.mu.Lock()
	ts.store.overloaded = false
	ts.store.mu.Unlock()
	if r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("o1")); r.status != 200 {
		t.Fatalf("retry after overload: %d %s", r.status, r.body)
	}
}

func TestIdempotentRetry(t *testing.T) {
	ts := start(t, nil)
	var first, second serve.IngestResponse
	for i, out := range []*serve.IngestResponse{&first, &second} {
		r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("r1", "r2", "r3"))
		if r.status != 200 {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
		}
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatal(err)
		}
	}
	if first.Stored != 3 || first.Duplicates != 0 || second.Stored != 0 || second.Duplicates != 3 {
		t.Errorf("first %+v, second %+v", first, second)
	}
	if n := ts.store.count("demo"); n != 3 {
		t.Errorf("store holds %d events, want 3", n)
	}
}

func TestAdminEndpoints(t *testing.T) {
	ts := start(t, nil)
	if r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("e1", "e2", "e3")); r.status != 200 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	for _, id := range []string{"s1", "s1~s"} { // client id, then server-side id
		t.Run("session "+id, func(t *testing.T) {
			r := do(t, "GET", ts.url+"/v1/sessions/"+id, adminKey, "")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var s serve.SessionResponse
			if err := json.Unmarshal(r.body, &s); err != nil {
				t.Fatal(err)
			}
			if s.Session != "s1~s" || s.ClientID != "s1" || len(s.Events) != 3 || s.EventCount != 3 {
				t.Errorf("session %+v", s)
			}
			if s.Events[0].EventID != "e1" || s.Events[0].Type != "page_view" || s.Events[0].Timestamp == "" {
				t.Errorf("first event %+v", s.Events[0])
			}
		})
	}
	t.Run("features", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/sessions/s1/features", adminKey, "")
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var f serve.FeaturesResponse
		if err := json.Unmarshal(r.body, &f); err != nil {
			t.Fatal(err)
		}
		if len(f.Names) == 0 || len(f.Names) != len(f.Values) || f.Fingerprint == "" || f.Session != "s1~s" {
			t.Errorf("features %+v", f)
		}
	})
	t.Run("features bad as_of", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/sessions/s1/features?as_of=yesterday", adminKey, "")
		if r.status != 400 || r.errorBody(t).Code != "bad_parameter" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("stats", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/stats", adminKey, "")
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var s serve.StatsResponse
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		if s.Site != "demo" || s.Events["page_view"] != 3 || s.TotalEvents != 3 || s.Sessions != 1 || s.Visitors != 1 {
			t.Errorf("stats %+v", s)
		}
		if _, ok := s.Events["macro_conversion"]; !ok {
			t.Error("stats omit zero event types")
		}
	})
	t.Run("other site sees nothing", func(t *testing.T) {
		r := do(t, "GET", ts.url+"/v1/sessions/s1", adminKey2, "")
		if r.status != 404 || r.errorBody(t).Code != "not_found" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

func TestEchoErrorsAreJSON(t *testing.T) {
	ts := start(t, nil)
	for _, tt := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"GET", "/v1/events", 405, "method_not_allowed"},
		{"DELETE", "/v1/stats", 405, "method_not_allowed"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, tt.method, ts.url+tt.path, adminKey, "")
			if r.status != tt.status {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if e := r.errorBody(t); e.Code != tt.code {
				t.Errorf("code %q, want %q", e.Code, tt.code)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	r := do(t, "GET", ts.url+"/healthz", "", "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"ok"`)) {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
}

func TestOpenBusyPort(t *testing.T) {
	ts := start(t, nil)
	srv, err := serve.New(serve.Options{Config: testConfig(t), Events: newFakeStore(), Decode: fakeDecode(5)})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Open(strings.TrimPrefix(ts.url, "http://"))
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("Open on a busy port: %v, want a listen error", err)
	}
}

// TestGracefulClose checks that Close waits for an in-flight request, which still gets its
// 200, and that new connections are refused afterwards.
func TestGracefulClose(t *testing.T) {
	st := newFakeStore()
	st.block, st.entered = make(chan struct{}), make(chan struct{}, 1)
	srv, err := serve.New(serve.Options{Config: testConfig(t), Events: st, Decode: fakeDecode(5)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	url := "http://" + srv.Addr()
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+"/v1/events", strings.NewReader(batch("g1")))
		req.Header.Set("Authorization", "Bearer "+writeKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- -1
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	<-st.entered
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- srv.Close(ctx)
	}()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the in-flight request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(st.block)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if s := <-got; s != 200 {
		t.Fatalf("in-flight request got %d, want 200", s)
	}
	if st.count("demo") != 1 {
		t.Error("in-flight batch not stored")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("server still accepts connections after Close")
	}
}

func TestRequestTimeoutAndPanic(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		ts := start(t, func(o *serve.Options) { o.RequestTimeout = 100 * time.Millisecond })
		ts.store.mu.Lock()
		ts.store.block = make(chan struct{}) // never closed: Append waits for the deadline
		ts.store.mu.Unlock()
		r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("t1"))
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
		}
		if e := r.errorBody(t); e.Code != "timeout" {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("panic", func(t *testing.T) {
		ts := start(t, nil)
		ts.store.mu.Lock()
		ts.store.panics = true
		ts.store.mu.Unlock()
		r := do(t, "POST", ts.url+"/v1/events", writeKey, batch("p1"))
		if r.status != 500 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if e := r.errorBody(t); e.Code != "internal" || strings.Contains(e.Message, "exploded") {
			t.Errorf("error %+v (internal details must not leak)", e)
		}
		if r := do(t, "GET", ts.url+"/healthz", "", ""); r.status != 200 {
			t.Errorf("server unhealthy after a panic: %d", r.status)
		}
	})
}
