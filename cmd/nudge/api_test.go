package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/serve"
)

// apiServer runs serve with the real in-memory store and the real wire decoder.
func apiServer(t *testing.T) string {
	t.Helper()
	cfg := config.Demo()
	sch, err := schemas(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{InMemory: true, Schema: sch})
	if err != nil {
		t.Fatal(err)
	}
	lim := wire.DefaultLimits()
	lim.MaxEvents = 10
	srv, err := serve.New(serve.Options{Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(lim), BodyLimit: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := st.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return "http://" + srv.Addr()
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+demo.WriteKey)
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAPIWithRealStore(t *testing.T) {
	url := apiServer(t)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	ev := func(id, session, typ string, at time.Time, extra string) string {
		return fmt.Sprintf(`{"event_id":%q,"session_id":%q,"anonymous_id":"visitor-1","type":%q,"timestamp":%q%s}`,
			id, session, typ, at.UTC().Format(time.RFC3339Nano), extra)
	}

	t.Run("validation round trip", func(t *testing.T) {
		body := "[" + strings.Join([]string{
			ev("v1", "c1", "page_view", t0, `,"props":{"path":"/home"}`),
			ev("v2", "c1", "teleport", t0, ""),
			ev("v3", "c1", "page_view", t0.Add(time.Hour*24*365*3), ""),
			ev("v4", "c1", "micro_conversion", t0.Add(time.Minute), `,"name":"add_to_cart"`),
			`{"event_id":"v5","session_id":"c1","anonymous_id":"visitor-1","type":"click","timestamp":1,"props":[1]}`,
		}, ",") + "]"
		code, b := post(t, url, body)
		if code != 200 {
			t.Fatalf("status %d: %s", code, b)
		}
		var r serve.IngestResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Received != 5 || r.Accepted != 2 || r.Stored != 2 {
			t.Errorf("response %+v", r)
		}
		fields := map[int][]string{}
		for _, rej := range r.Rejected {
			fields[rej.Index] = append(fields[rej.Index], rej.Field)
		}
		if !contains(fields[1], "type") || !contains(fields[2], "timestamp") || !contains(fields[4], "props") {
			t.Errorf("rejections by index: %v (%s)", fields, b)
		}
	})

	t.Run("no valid event is a 400 with details", func(t *testing.T) {
		code, b := post(t, url, "["+ev("", "c1", "page_view", t0, "")+"]")
		if code != 400 || !bytes.Contains(b, []byte(`"no_valid_events"`)) || !bytes.Contains(b, []byte(`"event_id"`)) {
			t.Errorf("status %d: %s", code, b)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		code, b := post(t, url, `{"events":`)
		if code != 400 || !bytes.Contains(b, []byte(`"malformed_body"`)) {
			t.Errorf("status %d: %s", code, b)
		}
	})
	t.Run("too many events", func(t *testing.T) {
		var evs []string
		for i := range 11 {
			evs = append(evs, ev(fmt.Sprintf("m%d", i), "c9", "page_view", t0, ""))
		}
		code, b := post(t, url, "["+strings.Join(evs, ",")+"]")
		if code != 413 || !bytes.Contains(b, []byte(`"too_many_events"`)) || !bytes.Contains(b, []byte("limit is 10")) {
			t.Errorf("status %d: %s", code, b)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		code, b := post(t, url, "["+ev("big", "c9", "page_view", t0, `,"name":"`+strings.Repeat("x", 9000)+`"`)+"]")
		if code != 413 || !bytes.Contains(b, []byte(`"body_too_large"`)) {
			t.Errorf("status %d: %s", code, b)
		}
	})
	t.Run("idempotent retry", func(t *testing.T) {
		body := "[" + ev("v1", "c1", "page_view", t0, `,"props":{"path":"/home"}`) + "]"
		code, b := post(t, url, body)
		var r serve.IngestResponse
		json.Unmarshal(b, &r)
		if code != 200 || r.Stored != 0 || r.Duplicates != 1 {
			t.Errorf("status %d: %s", code, b)
		}
	})
	t.Run("sessions split after 30 minutes of inactivity", func(t *testing.T) {
		later := t0.Add(time.Minute + 31*time.Minute)
		code, b := post(t, url, "["+ev("w1", "c1", "page_view", later, "")+","+ev("w2", "c1", "click", later.Add(time.Second), "")+"]")
		if code != 200 {
			t.Fatalf("status %d: %s", code, b)
		}
		var first, second serve.SessionResponse
		getJSON(t, url+"/v1/sessions/c1", &first)
		if len(first.Events) != 2 || first.Events[0].EventID != "v1" || first.Events[1].EventID != "v4" {
			t.Errorf("first visit %+v", first)
		}
		getJSON(t, url+"/v1/sessions/c1~2", &second)
		if second.Session != "c1~2" || second.ClientID != "c1" || len(second.Events) != 2 || second.Events[0].EventID != "w1" {
			t.Errorf("second visit %+v", second)
		}
		var f serve.FeaturesResponse
		getJSON(t, url+"/v1/sessions/c1/features", &f)
		if len(f.Names) == 0 || len(f.Names) != len(f.Values) || f.Fingerprint == "" {
			t.Errorf("features %+v", f)
		}
		var st serve.StatsResponse
		getJSON(t, url+"/v1/stats", &st)
		if st.Events["page_view"] != 2 || st.Events["micro_conversion"] != 1 || st.Events["click"] != 1 ||
			st.Sessions != 2 || st.Visitors != 1 || st.Duplicates != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("unknown session", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/sessions/nope", nil)
		req.Header.Set("Authorization", "Bearer "+demo.AdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !bytes.Contains(b, []byte(`"not_found"`)) {
			t.Errorf("status %d: %s", resp.StatusCode, b)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestStoreErrorMapping checks that the adapter maps the store's sentinels onto serve's
// kinds and keeps the store's own error matchable.
func TestStoreErrorMapping(t *testing.T) {
	for _, tt := range []struct{ in, want error }{
		{store.ErrNotFound, serve.ErrNotFound},
		{store.ErrOverloaded, serve.ErrOverloaded},
		{store.ErrClosed, serve.ErrUnavailable},
		{fmt.Errorf("wrapped: %w", store.ErrOverloaded), serve.ErrOverloaded},
	} {
		got := storeErr(tt.in)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.in) || got.Error() != tt.in.Error() {
			t.Errorf("storeErr(%v) = %v", tt.in, got)
		}
	}
	if storeErr(nil) != nil {
		t.Error("storeErr(nil) != nil")
	}
}
