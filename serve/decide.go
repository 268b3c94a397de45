package serve

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model/policy"
)

// DecisionRecord is one logged decision. Its fields are those of the store's record, in the
// same order, so an adapter converts a pointer to it without copying.
type DecisionRecord struct {
	ID, Site, Session, AnonymousID, UserID, Page string
	TS                                           int64   // Unix ms
	Group                                        string  // "treatment" | "holdout" | "explore"
	Arm                                          string  // intervention id, "" = none
	Probability                                  float64 // logged probability of Arm (see model/policy)
	Propensity                                   float64
	Interventions                                []string  // catalogue ids, index-aligned with Uplift
	Uplift                                       []float64 // nil when no uplift model
	PropensityVersion, UpliftVersion             int       // 0 = none
	Fingerprint                                  string    // feature schema fingerprint
	Reason                                       string
}

// DecisionStore is what the decide path needs of the store. LiveSession resolves a client
// (or server) session id and writes its live vector as of asOfTS into out, wrapping
// ErrNotFound for an unknown session. LogDecision must not wait for an fsync and must not
// let the caller's record be modified afterwards (the decide path never touches it again);
// it wraps ErrOverloaded when the write queue is full.
type DecisionStore interface {
	LiveSession(ctx context.Context, site, sessionID string, asOfTS int64, out []float64) (SessionInfo, *features.Schema, error)
	LogDecision(ctx context.Context, rec *DecisionRecord) error
	Decision(ctx context.Context, site, id string) (*DecisionRecord, bool, error)
}

// DecideRequest is the body of POST /v1/decide and POST /v1/score.
type DecideRequest struct {
	SessionID   string `json:"session_id"`             // the client's session id (or a server session id)
	AnonymousID string `json:"anonymous_id,omitempty"` // used for the sticky holdout when the session is unknown
	Page        string `json:"page,omitempty"`         // path the visitor is on (path eligibility)
	// TS is the decision time in Unix ms (0 = now). Like event timestamps it may lie at most
	// 15 minutes ahead and 400 days behind the server clock: simulations and replays use it.
	TS int64 `json:"ts,omitempty"`
}

// Bounds of DecideRequest.TS around the server clock (those of ingest's event timestamps).
const (
	maxDecideFuture = 15 * time.Minute
	maxDecidePast   = 400 * 24 * time.Hour
)

// DecideResult is the outcome of Server.Decide or Server.Score. Its slices are owned by the
// result and reused across calls with the same result (no allocation once sized).
type DecideResult struct {
	DecisionID                       string // "" for Score
	Site                             string
	Session                          string // the server session decided for (the request's id when unknown)
	Known                            bool   // the session exists in the store; false = decided on an empty state
	TS                               int64
	Intervene                        bool
	Arm                              int       // index into the site's interventions, -1 = none
	Propensity                       float64   // NaN when no propensity model is promoted
	Uplift                           []float64 // per intervention (NaN where the model has no such arm); nil without an uplift model
	EV                               []float64 // per intervention expected value; NaN when not eligible or no uplift
	Eligible                         []bool    // per intervention, after eligibility rules, caps and budget
	Group                            string
	Probability                      float64 // probability with which the policy takes Arm
	Reason                           string
	PropensityVersion, UpliftVersion int

	interventions []*config.Intervention
	visitor       visitorKey
	pdec          policy.Decision
	vec, out, upl []float64
}

// Intervention returns the chosen intervention (nil when none).
func (r *DecideResult) Intervention() *config.Intervention {
	if r.Arm < 0 || r.Arm >= len(r.interventions) {
		return nil
	}
	return r.interventions[r.Arm]
}

// Interventions returns the site's interventions, index-aligned with Uplift and EV.
func (r *DecideResult) Interventions() []*config.Intervention { return r.interventions }

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// idSources are ChaCha8 generators (cryptographically strong, math/rand/v2), each seeded
// from crypto/rand, pooled so a decision id costs a few nanoseconds instead of a getrandom
// call, and stays unguessable (a site's exposure events link to decisions by id).
var idSources = sync.Pool{New: func() any {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (Go >= 1.24)
	return mrand.NewChaCha8(seed)
}}

// newDecisionID returns a random 128-bit id in hex.
func newDecisionID() string {
	src := idSources.Get().(*mrand.ChaCha8)
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], src.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], src.Uint64())
	idSources.Put(src)
	var h [32]byte
	hex.Encode(h[:], raw[:])
	return string(h[:])
}

// loggedDecision is a decision record and room for its uplift scores, allocated together
// (one allocation per logged decision for the usual catalogue of up to 8 interventions).
type loggedDecision struct {
	rec DecisionRecord
	upl [8]float64
}

// Decide takes a live decision for a session of site: it reads the session's live vector,
// scores the promoted propensity and uplift models, applies the site's policy, logs the
// decision and fills res. It is the whole decide path without HTTP; it does not allocate
// beyond the decision id, the logged record and what the store's read needs.
func (s *Server) Decide(ctx context.Context, site string, req *DecideRequest, res *DecideResult) error {
	b, err := s.score(ctx, site, req, res)
	if err != nil {
		return err
	}
	visitor := res.visitorKey(req)
	res.DecisionID = newDecisionID()
	preq := policy.Request{
		DecisionID: res.DecisionID, Visitor: visitor.key, Session: res.Session, Page: req.Page,
		Features: res.vec, Propensity: res.Propensity, Uplift: res.Uplift, Now: time.UnixMilli(res.TS),
	}
	if math.IsNaN(preq.Propensity) {
		preq.Propensity = 0
	}
	if err := b.policy.Decide(&preq, &res.pdec); err != nil {
		return fmt.Errorf("serve: decide: %w", err)
	}
	d := &res.pdec
	res.Arm, res.Intervene, res.Probability, res.EV, res.Eligible = d.Arm, d.Intervene(), d.Probability, d.EV, d.Eligible
	res.Group = d.Group.String()
	res.Reason = d.Reason
	if b.noModel != "" {
		res.Reason += b.noModel
	}
	ld := &loggedDecision{rec: DecisionRecord{
		ID: res.DecisionID, Site: site, Session: res.Session, AnonymousID: visitor.anon,
		UserID: visitor.user, Page: req.Page, TS: res.TS, Group: res.Group,
		Probability: res.Probability, Propensity: preq.Propensity, Interventions: b.ivIDs,
		PropensityVersion: res.PropensityVersion, UpliftVersion: res.UpliftVersion,
		Fingerprint: b.schema.Fingerprint, Reason: res.Reason,
	}}
	rec := &ld.rec
	if res.Arm >= 0 {
		rec.Arm = b.ivIDs[res.Arm]
	}
	if res.Uplift != nil {
		// the record owns its copy: res is reused by the caller while the writer encodes rec
		if len(res.Uplift) <= len(ld.upl) {
			rec.Uplift = ld.upl[:len(res.Uplift):len(res.Uplift)]
			copy(rec.Uplift, res.Uplift)
		} else {
			rec.Uplift = append([]float64(nil), res.Uplift...)
		}
	}
	if err := s.decisions.LogDecision(ctx, rec); err != nil {
		if errors.Is(err, ErrOverloaded) {
			return newError(ErrOverloaded, nil, "the decision log is overloaded; show no intervention and retry later")
		}
		return fmt.Errorf("serve: log decision: %w", err)
	}
	return nil
}

// Score fills res with a session's propensity and uplift (no policy, nothing logged).
func (s *Server) Score(ctx context.Context, site string, req *DecideRequest, res *DecideResult) error {
	_, err := s.score(ctx, site, req, res)
	return err
}

type visitorKey struct{ key, anon, user string }

// visitorKey is the sticky holdout key: the user id when known, else the anonymous id, else
// the session.
func (r *DecideResult) visitorKey(req *DecideRequest) visitorKey {
	v := r.visitor
	if v.anon == "" {
		v.anon = req.AnonymousID
	}
	switch {
	case v.user != "":
		v.key = v.user
	case v.anon != "":
		v.key = v.anon
	default:
		v.key = r.Session
	}
	return v
}

// score reads the session and scores the live models into res.
func (s *Server) score(ctx context.Context, site string, req *DecideRequest, res *DecideResult) (*bundle, error) {
	if s.decisions == nil || s.live == nil {
		return nil, newError(ErrUnavailable, nil, "the decide path is not configured on this server")
	}
	b := s.live.current(site)
	if b == nil {
		return nil, newError(ErrNotFound, nil, "no site %q", site)
	}
	if req.SessionID == "" {
		return nil, newError(ErrBadParam, nil, "session_id is required")
	}
	now := s.now()
	ts := req.TS
	switch {
	case ts == 0:
		ts = now.UnixMilli()
	case ts > now.Add(maxDecideFuture).UnixMilli() || ts < now.Add(-maxDecidePast).UnixMilli():
		return nil, newError(ErrBadParam, nil, "ts %d is more than 15 minutes ahead or 400 days behind the server clock", ts)
	}
	*res = DecideResult{
		Site: site, TS: ts, Arm: -1, Propensity: math.NaN(), interventions: b.ivs,
		PropensityVersion: b.models.PropensityVersion, UpliftVersion: b.models.UpliftVersion,
		pdec: res.pdec, vec: res.vec, out: res.out, upl: res.upl,
	}
	n := b.schema.Len()
	res.vec = grow(res.vec, n)
	info, sc, err := s.decisions.LiveSession(ctx, site, req.SessionID, ts, res.vec)
	switch {
	case err == nil:
		if sc != nil && sc.Fingerprint != b.schema.Fingerprint {
			return nil, fmt.Errorf("serve: session %q follows schema %s, the live one is %s", req.SessionID, sc.Fingerprint, b.schema.Fingerprint)
		}
		res.Session, res.Known = info.ID, true
		res.visitor = visitorKey{anon: info.AnonymousID, user: info.UserID}
	case errors.Is(err, ErrNotFound):
		// Not seen yet (its first events may still be in flight): decide on an empty state.
		st := b.schema.NewState(features.VisitorHistory{})
		if err := b.schema.Vector(&st, ts, res.vec); err != nil {
			return nil, fmt.Errorf("serve: empty state vector: %w", err)
		}
		res.Session = req.SessionID
	default:
		return nil, fmt.Errorf("serve: read session: %w", err)
	}
	if m := b.models.Propensity; m != nil {
		p, err := m.Score(res.vec)
		if err != nil {
			return nil, fmt.Errorf("serve: propensity model v%d: %w", b.models.PropensityVersion, err)
		}
		res.Propensity = p
	}
	if m := b.models.Uplift; m != nil {
		res.out = grow(res.out, b.nOut)
		if err := m.Predict(res.vec, res.out); err != nil {
			return nil, fmt.Errorf("serve: uplift model v%d: %w", b.models.UpliftVersion, err)
		}
		res.upl = grow(res.upl, len(b.armOut))
		for i, k := range b.armOut {
			if k < 0 {
				res.upl[i] = math.NaN()
			} else {
				res.upl[i] = res.out[k]
			}
		}
		res.Uplift = res.upl
	}
	return b, nil
}

// decideScratch is the per-request state of the decide handlers, pooled.
type decideScratch struct {
	req DecideRequest
	res DecideResult
	buf []byte
}

var decidePool = sync.Pool{New: func() any { return &decideScratch{buf: make([]byte, 0, 1024)} }}

// postDecide is POST /v1/decide (write key).
func (s *Server) postDecide(c echo.Context) error { return s.decideHTTP(c, true) }

// postScore is POST /v1/score (write key): propensity and uplift only, nothing logged.
func (s *Server) postScore(c echo.Context) error { return s.decideHTTP(c, false) }

func (s *Server) decideHTTP(c echo.Context, decide bool) error {
	site, _, err := s.authenticate(c, RoleWrite)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	sc := decidePool.Get().(*decideScratch)
	defer decidePool.Put(sc)
	sc.req = DecideRequest{}
	if err := gojson.Unmarshal(body, &sc.req); err != nil {
		return newError(ErrMalformed, nil, "the body is not a JSON object {\"session_id\": ..., \"anonymous_id\": ..., \"page\": ..., \"ts\": ...}: %v", err)
	}
	ctx := c.Request().Context()
	if decide {
		err = s.Decide(ctx, site.ID, &sc.req, &sc.res)
	} else {
		err = s.Score(ctx, site.ID, &sc.req, &sc.res)
	}
	if err != nil {
		return err
	}
	sc.buf = appendDecideJSON(sc.buf[:0], &sc.res, decide)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sc.buf)
}

// appendDecideJSON writes the response body of /v1/decide (decide) or /v1/score:
//
//	{"decision_id": hex, "site", "session", "known_session", "ts", "intervene",
//	 "intervention": {"id","kind","cost"} | null, "propensity": p | null,
//	 "uplift": {id: u}, "expected_value": {id: ev (eligible only)}, "eligible": [id...],
//	 "group", "probability",
//	 "model_version": {"propensity": v | null, "uplift": v | null}, "reason"}
//
// /v1/score leaves out the decision fields.
func appendDecideJSON(b []byte, r *DecideResult, decide bool) []byte {
	b = append(b, '{')
	if decide {
		b = append(b, `"decision_id":`...)
		b = appendJSONString(b, r.DecisionID)
		b = append(b, ',')
	}
	b = append(b, `"site":`...)
	b = appendJSONString(b, r.Site)
	b = append(b, `,"session":`...)
	b = appendJSONString(b, r.Session)
	b = append(b, `,"known_session":`...)
	b = strconv.AppendBool(b, r.Known)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, r.TS, 10)
	if decide {
		b = append(b, `,"intervene":`...)
		b = strconv.AppendBool(b, r.Intervene)
		b = append(b, `,"intervention":`...)
		if iv := r.Intervention(); iv != nil {
			b = append(b, `{"id":`...)
			b = appendJSONString(b, iv.ID)
			b = append(b, `,"kind":`...)
			b = appendJSONString(b, iv.Kind)
			b = append(b, `,"cost":`...)
			b = appendJSONFloat(b, iv.Cost)
			b = append(b, '}')
		} else {
			b = append(b, "null"...)
		}
	}
	b = append(b, `,"propensity":`...)
	b = appendJSONFloat(b, r.Propensity)
	b = append(b, `,"uplift":{`...)
	first := true
	for i, u := range r.Uplift {
		if !finite(u) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, r.interventions[i].ID)
		b = append(b, ':')
		b = appendJSONFloat(b, u)
	}
	b = append(b, '}')
	if decide {
		b = append(b, `,"expected_value":{`...)
		first = true
		for i, ev := range r.EV {
			if !finite(ev) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, r.interventions[i].ID)
			b = append(b, ':')
			b = appendJSONFloat(b, ev)
		}
		b = append(b, `},"eligible":[`...)
		first = true
		for i, ok := range r.Eligible {
			if !ok {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, r.interventions[i].ID)
		}
		b = append(b, `],"group":`...)
		b = appendJSONString(b, r.Group)
		b = append(b, `,"probability":`...)
		b = appendJSONFloat(b, r.Probability)
	}
	b = append(b, `,"model_version":{"propensity":`...)
	b = appendVersion(b, r.PropensityVersion)
	b = append(b, `,"uplift":`...)
	b = appendVersion(b, r.UpliftVersion)
	b = append(b, '}')
	if decide {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, r.Reason)
	}
	return append(b, '}')
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func appendVersion(b []byte, v int) []byte {
	if v <= 0 {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// appendJSONFloat writes f, or null for NaN and infinities (which JSON cannot carry).
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendJSONString writes s as a JSON string (control characters, quotes and backslashes
// escaped; invalid UTF-8 replaced).
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// DecisionResponse is the body of GET /v1/decisions/:id (admin key).
type DecisionResponse struct {
	ID                string             `json:"decision_id"`
	Site              string             `json:"site"`
	Session           string             `json:"session"`
	AnonymousID       string             `json:"anonymous_id,omitempty"`
	UserID            string             `json:"user_id,omitempty"`
	Page              string             `json:"page,omitempty"`
	TS                int64              `json:"ts"`
	Timestamp         string             `json:"timestamp"`
	Group             string             `json:"group"`
	Intervention      string             `json:"intervention"`
	Probability       float64            `json:"probability"`
	Propensity        float64            `json:"propensity"`
	Uplift            map[string]float64 `json:"uplift"`
	PropensityVersion int                `json:"propensity_version"`
	UpliftVersion     int                `json:"uplift_version"`
	Fingerprint       string             `json:"fingerprint"`
	Reason            string             `json:"reason"`
	Exposed           bool               `json:"exposed"`
}

func (s *Server) getDecision(c echo.Context) error {
	site, _, err := s.authenticate(c, RoleAdmin)
	if err != nil {
		return err
	}
	if s.decisions == nil {
		return newError(ErrUnavailable, nil, "the decide path is not configured on this server")
	}
	rec, exposed, err := s.decisions.Decision(c.Request().Context(), site.ID, c.Param("id"))
	if errors.Is(err, ErrNotFound) {
		return newError(ErrNotFound, nil, "no decision %q in site %q (decisions are written a few milliseconds after they are taken)", c.Param("id"), site.ID)
	}
	if err != nil {
		return fmt.Errorf("serve: read decision: %w", err)
	}
	out := DecisionResponse{
		ID: rec.ID, Site: site.ID, Session: rec.Session, AnonymousID: rec.AnonymousID, UserID: rec.UserID,
		Page: rec.Page, TS: rec.TS, Timestamp: msTime(rec.TS), Group: rec.Group, Intervention: rec.Arm,
		Probability: rec.Probability, Propensity: rec.Propensity, Uplift: map[string]float64{},
		PropensityVersion: rec.PropensityVersion, UpliftVersion: rec.UpliftVersion,
		Fingerprint: rec.Fingerprint, Reason: rec.Reason, Exposed: exposed,
	}
	for i, u := range rec.Uplift {
		if i < len(rec.Interventions) && finite(u) {
			out.Uplift[rec.Interventions[i]] = u
		}
	}
	return c.JSON(http.StatusOK, out)
}

// routesDecide registers the decide path's routes.
func (s *Server) routesDecide(e *echo.Echo) {
	e.POST("/v1/decide", s.postDecide)
	e.POST("/v1/score", s.postScore)
	e.GET("/v1/decisions/:id", s.getDecision)
}
