package wire

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// secretParams are query parameters whose values are replaced by "REDACTED" in URL-like
// props (compared case-insensitively).
var secretParams = []string{"token", "api_key", "apikey", "key", "password", "passwd", "secret", "auth", "access_token", "session"}

// urlProps are the props that hold URLs or paths.
var urlProps = []string{"path", "url", "referrer"}

// Redacted replaces secret values.
const Redacted = "REDACTED"

// An event's props are cleaned once decoded (decoder.clean): secrets in URLs are redacted
// and long paths, URLs and titles are truncated (on a rune boundary) rather than rejected.

// cleanURL is the cleaned value of a URL prop (urlProps).
func cleanURL(v string) string {
	return truncate(RedactURL(v), MaxURLLen)
}

// cleanTitle is the cleaned value of the "title" prop.
func cleanTitle(v string) string {
	return truncate(v, MaxTitleLen)
}

// RedactURL replaces the values of secret query parameters (token, api_key, key, password,
// secret, auth, ...) in a URL or path with "REDACTED", in the query and in the fragment,
// leaving the rest of the string byte for byte.
func RedactURL(s string) string {
	q := strings.IndexAny(s, "?#")
	if q < 0 {
		return s
	}
	var b strings.Builder
	changed := false
	b.Grow(len(s))
	b.WriteString(s[:q+1])
	rest := s[q+1:]
	for len(rest) > 0 {
		end := strings.IndexAny(rest, "&;#?")
		part, sep := rest, ""
		if end >= 0 {
			part, sep, rest = rest[:end], rest[end:end+1], rest[end+1:]
		} else {
			rest = ""
		}
		if name, _, ok := strings.Cut(part, "="); ok && isSecret(name) {
			b.WriteString(name)
			b.WriteString("=")
			b.WriteString(Redacted)
			changed = true
		} else {
			b.WriteString(part)
		}
		b.WriteString(sep)
	}
	if !changed {
		return s
	}
	return b.String()
}

func isSecret(name string) bool {
	if u, err := url.QueryUnescape(name); err == nil {
		name = u
	}
	name = strings.ToLower(name)
	for _, p := range secretParams {
		if name == p {
			return true
		}
	}
	return false
}

// validString reports whether s is valid UTF-8 without NUL bytes.
func validString(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
