package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
)

// fakeStore is an in-process EventStore: it deduplicates on (site, event_id), groups
// events by client session id and can be told to be overloaded or to block.
type fakeStore struct {
	mu         sync.Mutex
	events     map[string]map[string]features.Event // site -> event_id -> event
	duplicates int64
	overloaded bool
	panics     bool
	block      chan struct{} // when set, Append waits for it to close
	entered    chan struct{} // when set, Append signals here on entry
}

func newFakeStore() *fakeStore {
	return &fakeStore{events: map[string]map[string]features.Event{}}
}

func (f *fakeStore) Append(ctx context.Context, site string, evs []features.Event) (serve.AppendResult, error) {
	f.mu.Lock()
	block, entered, over, panics := f.block, f.entered, f.overloaded, f.panics
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return serve.AppendResult{}, fmt.Errorf("fake: append: %w", ctx.Err())
		}
	}
	if panics {
		panic("fake store exploded")
	}
	if over {
		return serve.AppendResult{}, fmt.Errorf("fake: %w", serve.ErrOverloaded)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.events[site]
	if m == nil {
		m = map[string]features.Event{}
		f.events[site] = m
	}
	var res serve.AppendResult
	for _, e := range evs {
		if _, dup := m[e.EventID]; dup {
			res.Duplicates++
			f.duplicates++
			continue
		}
		e.Session = e.SessionID + "~s"
		m[e.EventID] = e
		res.Stored++
	}
	return res, nil
}

func (f *fakeStore) sessionEvents(site, session string) []features.Event {
	var out []features.Event
	for _, e := range f.events[site] {
		if e.Session == session {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TS < out[j].TS })
	return out
}

func (f *fakeStore) Session(ctx context.Context, site, session string) (serve.SessionInfo, []features.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	evs := f.sessionEvents(site, session)
	if len(evs) == 0 {
		return serve.SessionInfo{}, nil, fmt.Errorf("fake: session %q: %w", session, serve.ErrNotFound)
	}
	return serve.SessionInfo{
		ID: session, ClientID: evs[0].SessionID, AnonymousID: evs[0].AnonymousID,
		StartTS: evs[0].TS, LastTS: evs[len(evs)-1].TS, Events: len(evs),
	}, evs, nil
}

func (f *fakeStore) ResolveSession(ctx context.Context, site, client string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events[site] {
		if e.SessionID == client {
			return e.Session, nil
		}
	}
	return "", fmt.Errorf("fake: client session %q: %w", client, serve.ErrNotFound)
}

func (f *fakeStore) Features(ctx context.Context, site, session string, asOf int64, out []float64) (*features.Schema, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	evs := f.sessionEvents(site, session)
	if len(evs) == 0 {
		return nil, fmt.Errorf("fake: %w", serve.ErrNotFound)
	}
	demo, _ := config.Demo().Site("demo") // both test sites share the demo spec
	sc, err := features.NewSchema(demo.FeatureSpec())
	if err != nil {
		return nil, err
	}
	if err := sc.Replay(features.VisitorHistory{}, evs, asOf, out); err != nil {
		return nil, err
	}
	return sc, nil
}

func (f *fakeStore) Stats(ctx context.Context, site string) (serve.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := serve.Stats{Events: map[string]int64{}, Duplicates: f.duplicates}
	sessions, visitors := map[string]bool{}, map[string]bool{}
	for _, e := range f.events[site] {
		st.Events[e.Type.String()]++
		sessions[e.Session] = true
		visitors[e.AnonymousID] = true
	}
	st.Sessions, st.Visitors = int64(len(sessions)), int64(len(visitors))
	return st, nil
}

func (f *fakeStore) count(site string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events[site])
}

// fakeDecode is a small stand-in for data/wire: {"events": [...]} with event_id and type
// required, at most maxEvents events.
func fakeDecode(maxEvents int) serve.Decoder {
	return func(body []byte, now time.Time, consent bool) (serve.Batch, error) {
		var in struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return serve.Batch{}, fmt.Errorf("fake: %w: %v", serve.ErrMalformed, err)
		}
		if len(in.Events) > maxEvents {
			return serve.Batch{}, fmt.Errorf("fake: %w: %d events, limit %d", serve.ErrTooManyEvents, len(in.Events), maxEvents)
		}
		b := serve.Batch{Received: len(in.Events)}
		for i, raw := range in.Events {
			var e struct {
				EventID     string `json:"event_id"`
				SessionID   string `json:"session_id"`
				AnonymousID string `json:"anonymous_id"`
				Type        string `json:"type"`
				TS          int64  `json:"ts"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				b.Errors = append(b.Errors, serve.FieldError{Index: i, Field: "", Reason: "not an object"})
				continue
			}
			t, ok := features.ParseEventType(e.Type)
			switch {
			case e.EventID == "":
				b.Errors = append(b.Errors, serve.FieldError{Index: i, Field: "event_id", Reason: "missing"})
			case !ok:
				b.Errors = append(b.Errors, serve.FieldError{Index: i, EventID: e.EventID, Field: "type", Reason: "unknown event type"})
			default:
				if e.TS == 0 {
					e.TS = now.UnixMilli()
				}
				b.Events = append(b.Events, features.Event{
					EventID: e.EventID, SessionID: e.SessionID, AnonymousID: e.AnonymousID,
					Type: t, TS: e.TS, Consent: consent,
				})
				b.Index = append(b.Index, i)
			}
		}
		return b, nil
	}
}
