package serve

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nudgehq/nudge/data/config"
)

// Role is what a key allows.
type Role int

// Roles, in increasing power. A write key (browser-safe) allows ingest (and decide); an admin
// key (secret) allows everything, admin endpoints included.
const (
	RoleWrite Role = iota + 1
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleWrite:
		return "write"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// authenticate finds the site and role of the request's key and checks that the role is at
// least need, that a site named by the request (?site=ID) is the key's own, and that a
// browser request made with a write key comes from one of the site's allowed origins.
//
// The key is read from "Authorization: Bearer <key>". Because navigator.sendBeacon cannot
// set headers, a write key (browser-safe by design) may also come as the query parameter
// "key"; an admin key never may (it would end up in logs and browser history).
func (s *Server) authenticate(c echo.Context, need Role) (*config.Site, Role, error) {
	req := c.Request()
	key, fromHeader := bearer(req.Header.Get(echo.HeaderAuthorization))
	if !fromHeader {
		key = c.QueryParam("key")
	}
	if key == "" {
		return nil, 0, newError(ErrUnauthorized, nil, "missing key: send \"Authorization: Bearer <key>\"")
	}
	var (
		site *config.Site
		role Role
	)
	// Both lookups always run (each is constant-time over all sites).
	admin, isAdmin := s.cfg.SiteByAdminKey(key)
	write, isWrite := s.cfg.SiteByWriteKey(key)
	switch {
	case isAdmin && fromHeader:
		site, role = admin, RoleAdmin
	case isWrite:
		site, role = write, RoleWrite
	case isAdmin:
		return nil, 0, newError(ErrUnauthorized, nil, "admin keys are accepted only in the Authorization header")
	default:
		return nil, 0, newError(ErrUnauthorized, nil, "invalid key")
	}
	if named := c.QueryParam("site"); named != "" && named != site.ID {
		return nil, 0, newError(ErrForbidden, nil, "the key does not belong to site %q", named)
	}
	if role < need {
		return nil, 0, newError(ErrForbidden, nil, "this endpoint needs the site's %s key, not its %s key", need, role)
	}
	if role == RoleWrite {
		if origin := req.Header.Get(echo.HeaderOrigin); origin != "" && !slices.Contains(site.AllowedOrigins, origin) {
			return nil, 0, newError(ErrForbidden, nil, "origin %q is not allowed for site %q", origin, site.ID)
		}
	}
	return site, role, nil
}

// bearer extracts the token of an "Authorization: Bearer <token>" header value.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
