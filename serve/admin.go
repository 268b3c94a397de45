package serve

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nudgehq/nudge/features"
)

// EventJSON is an event as the admin API shows it.
type EventJSON struct {
	EventID     string            `json:"event_id"`
	Session     string            `json:"session"`
	SessionID   string            `json:"session_id"`
	AnonymousID string            `json:"anonymous_id"`
	UserID      string            `json:"user_id,omitempty"`
	Type        string            `json:"type"`
	TS          int64             `json:"ts"`
	Timestamp   string            `json:"timestamp"`
	Name        string            `json:"name,omitempty"`
	Value       float64           `json:"value,omitempty"`
	Props       map[string]string `json:"props,omitempty"`
	Consent     bool              `json:"consent"`
}

// SessionResponse is the body of GET /v1/sessions/:id.
type SessionResponse struct {
	Site        string      `json:"site"`
	Session     string      `json:"session"`
	ClientID    string      `json:"session_id"`
	AnonymousID string      `json:"anonymous_id"`
	UserID      string      `json:"user_id,omitempty"`
	Start       string      `json:"start"`
	Last        string      `json:"last"`
	StartTS     int64       `json:"start_ts"`
	LastTS      int64       `json:"last_ts"`
	EventCount  int         `json:"event_count"`
	Events      []EventJSON `json:"events"`
}

// FeaturesResponse is the body of GET /v1/sessions/:id/features.
type FeaturesResponse struct {
	Site          string    `json:"site"`
	Session       string    `json:"session"`
	AsOfTS        int64     `json:"as_of_ts"`
	SchemaVersion int       `json:"schema_version"`
	Fingerprint   string    `json:"fingerprint"`
	Names         []string  `json:"names"`
	Values        []float64 `json:"values"`
}

// StatsResponse is the body of GET /v1/stats.
type StatsResponse struct {
	Site        string           `json:"site"`
	Events      map[string]int64 `json:"events"`
	TotalEvents int64            `json:"total_events"`
	Sessions    int64            `json:"sessions"`
	Visitors    int64            `json:"visitors"`
	Duplicates  int64            `json:"duplicates"`
	Unlogged    int64            `json:"unlogged"`
	FirstTS     int64            `json:"first_ts,omitempty"`
	LastTS      int64            `json:"last_ts,omitempty"`
}

func msTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// resolve finds the server-side session named id: a server-side id directly, else a client
// session id (its latest visit).
func (s *Server) resolve(c echo.Context, site, id string) (string, error) {
	ctx := c.Request().Context()
	if id == "" {
		return "", newError(ErrBadParam, nil, "empty session id")
	}
	if _, _, err := s.events.Session(ctx, site, id); err == nil {
		return id, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("serve: read session: %w", err)
	}
	sess, err := s.events.ResolveSession(ctx, site, id)
	if errors.Is(err, ErrNotFound) {
		return "", newError(ErrNotFound, nil, "no session %q in site %q", id, site)
	}
	if err != nil {
		return "", fmt.Errorf("serve: resolve session: %w", err)
	}
	return sess, nil
}

func (s *Server) getSession(c echo.Context) error {
	site, _, err := s.authenticate(c, RoleAdmin)
	if err != nil {
		return err
	}
	id, err := s.resolve(c, site.ID, c.Param("id"))
	if err != nil {
		return err
	}
	info, evs, err := s.events.Session(c.Request().Context(), site.ID, id)
	if errors.Is(err, ErrNotFound) {
		return newError(ErrNotFound, nil, "no session %q in site %q", id, site.ID)
	}
	if err != nil {
		return fmt.Errorf("serve: read session: %w", err)
	}
	out := SessionResponse{
		Site: site.ID, Session: info.ID, ClientID: info.ClientID, AnonymousID: info.AnonymousID,
		UserID: info.UserID, StartTS: info.StartTS, LastTS: info.LastTS,
		Start: msTime(info.StartTS), Last: msTime(info.LastTS), EventCount: info.Events,
		Events: make([]EventJSON, len(evs)),
	}
	if out.Session == "" {
		out.Session = id
	}
	for i := range evs {
		out.Events[i] = eventJSON(&evs[i])
	}
	return c.JSON(http.StatusOK, out)
}

func eventJSON(e *features.Event) EventJSON {
	return EventJSON{
		EventID: e.EventID, Session: e.Session, SessionID: e.SessionID, AnonymousID: e.AnonymousID,
		UserID: e.UserID, Type: e.Type.String(), TS: e.TS, Timestamp: msTime(e.TS), Name: e.Name,
		Value: e.Value, Props: e.Props, Consent: e.Consent,
	}
}

func (s *Server) getFeatures(c echo.Context) error {
	site, _, err := s.authenticate(c, RoleAdmin)
	if err != nil {
		return err
	}
	asOf := s.now().UnixMilli()
	if v := c.QueryParam("as_of"); v != "" {
		if asOf, err = strconv.ParseInt(v, 10, 64); err != nil || asOf <= 0 {
			return newError(ErrBadParam, nil, "as_of %q: want Unix milliseconds", v)
		}
	}
	id, err := s.resolve(c, site.ID, c.Param("id"))
	if err != nil {
		return err
	}
	sc, err := s.schema(site)
	if err != nil {
		return err
	}
	vals := make([]float64, sc.Len())
	got, err := s.events.Features(c.Request().Context(), site.ID, id, asOf, vals)
	if errors.Is(err, ErrNotFound) {
		return newError(ErrNotFound, nil, "no session %q in site %q", id, site.ID)
	}
	if err != nil {
		return fmt.Errorf("serve: session features: %w", err)
	}
	if got != nil {
		sc = got
	}
	return c.JSON(http.StatusOK, FeaturesResponse{
		Site: site.ID, Session: id, AsOfTS: asOf, SchemaVersion: sc.Version,
		Fingerprint: sc.Fingerprint, Names: sc.Names, Values: vals,
	})
}

func (s *Server) getStats(c echo.Context) error {
	site, _, err := s.authenticate(c, RoleAdmin)
	if err != nil {
		return err
	}
	st, err := s.events.Stats(c.Request().Context(), site.ID)
	if err != nil {
		return fmt.Errorf("serve: stats: %w", err)
	}
	out := StatsResponse{
		Site: site.ID, Events: map[string]int64{}, Sessions: st.Sessions, Visitors: st.Visitors,
		Duplicates: st.Duplicates, Unlogged: st.Unlogged, FirstTS: st.FirstTS, LastTS: st.LastTS,
	}
	for _, t := range features.EventTypes() {
		out.Events[t.String()] = 0
	}
	for k, v := range st.Events {
		out.Events[k] = v
		out.TotalEvents += v
	}
	return c.JSON(http.StatusOK, out)
}
