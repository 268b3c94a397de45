package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CookieName is the dashboard's session cookie.
const CookieName = "nudge_session"

// Session errors.
var (
	ErrNoSession      = errors.New("dashboard: no session cookie")
	ErrBadSession     = errors.New("dashboard: session token invalid or tampered with")
	ErrExpiredSession = errors.New("dashboard: session expired")
)

// Sessions issues and verifies session tokens: "v1.<sites>.<expiry unix>" signed with
// HMAC-SHA256 under a secret that never leaves the process. The token names the sites whose
// admin key the browser proved it holds; it never carries a key.
type Sessions struct {
	secret []byte
	ttl    time.Duration
}

// NewSessions returns a token signer with secret (nil: 32 random bytes, so tokens die with
// the process) and tokens valid for ttl (0: 12 hours).
func NewSessions(secret []byte, ttl time.Duration) (*Sessions, error) {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("dashboard: session secret: %w", err)
		}
	}
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	return &Sessions{secret: slices.Clone(secret), ttl: ttl}, nil
}

// TTL is how long an issued token stays valid.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// Issue returns a token for sites, valid from now for the TTL.
func (s *Sessions) Issue(sites []string, now time.Time) string {
	enc := make([]string, len(sites))
	for i, site := range sites {
		enc[i] = base64.RawURLEncoding.EncodeToString([]byte(site))
	}
	payload := "v1." + strings.Join(enc, "~") + "." + strconv.FormatInt(now.Add(s.ttl).Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

func (s *Sessions) mac(payload string) []byte {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// Verify checks token's signature (in constant time) and expiry and returns its sites.
func (s *Sessions) Verify(token string, now time.Time) ([]string, error) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return nil, ErrBadSession
	}
	payload, sig := token[:i], token[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return nil, ErrBadSession
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, ErrBadSession
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return nil, ErrBadSession
	}
	if !now.Before(time.Unix(exp, 0)) {
		return nil, ErrExpiredSession
	}
	var sites []string
	for _, e := range strings.Split(parts[1], "~") {
		b, err := base64.RawURLEncoding.DecodeString(e)
		if err != nil || len(b) == 0 {
			return nil, ErrBadSession
		}
		sites = append(sites, string(b))
	}
	return sites, nil
}

// FromRequest verifies the request's session cookie and returns its sites.
func (s *Sessions) FromRequest(r *http.Request, now time.Time) ([]string, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrNoSession
	}
	return s.Verify(c.Value, now)
}

// cookie is the session cookie for token: HttpOnly, SameSite=Strict, Secure on TLS, on the
// whole origin so the report API's download links carry it.
func (s *Sessions) cookie(r *http.Request, token string, now time.Time) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, Expires: now.Add(s.ttl), MaxAge: int(s.ttl / time.Second),
	}
}

// clearCookie deletes the session cookie.
func clearCookie(r *http.Request) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: -1, Expires: time.Unix(0, 0),
	}
}
