package features

import "strings"

// This file holds the allocation-free string work of the fold: hashing categoricals, deriving
// the traffic source of a landing event, normalising page keys and reading the device class.

// FNV-1a, 64 bit.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// HashCategory is the stable hash of a categorical value: FNV-1a 64 over the value with ASCII
// letters lowered and surrounding spaces trimmed. Bucket b of a value is HashCategory(v) % B.
func HashCategory(v string) uint64 {
	v = strings.TrimSpace(v)
	h := uint64(fnvOffset)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// hashBytes is FNV-1a 64 over v as is (page keys are case-sensitive).
func hashBytes(v string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(v); i++ {
		h ^= uint64(v[i])
		h *= fnvPrime
	}
	return h
}

// Values of the hashed categoricals when nothing says otherwise.
const (
	SourceDirect = "(direct)"
	ValueNone    = "(none)"
	GroupRoot    = "(root)"
)

// Channels: a fixed, small classification of the traffic medium.
const (
	chDirect uint8 = iota
	chOrganic
	chPaid
	chSocial
	chEmail
	chReferral
	chOther
	numChannels
)

// Device classes.
const (
	deviceUnknown uint8 = iota
	deviceMobile
	deviceTablet
	deviceDesktop
	numDevices
)

var searchEngines = [...]string{"google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "qwant", "naver", "seznam", "startpage", "ask"}

var socialSites = [...]string{"facebook", "instagram", "twitter", "linkedin", "lnkd", "reddit", "pinterest", "youtube", "tiktok", "snapchat", "threads", "mastodon"}

// Traffic is the source, medium and campaign of a session as derived from its landing event.
type Traffic struct {
	Source, Medium, Campaign string
	Channel                  string
}

// DeriveTraffic returns what the fold derives from an event's props: utm_source, utm_medium and
// utm_campaign when utm_source is present; otherwise from the referrer host: none is
// (direct)/(none), a search engine is <engine>/organic, a social site is <host>/social, any
// other host is <host>/referral. It is exported for reports and tests.
func DeriveTraffic(props map[string]string) Traffic {
	src, med, camp, ch := deriveTraffic(props)
	return Traffic{Source: src, Medium: med, Campaign: camp, Channel: channelNames[ch][len("channel_"):]}
}

func deriveTraffic(props map[string]string) (source, medium, campaign string, channel uint8) {
	campaign = strings.TrimSpace(props["utm_campaign"])
	if campaign == "" {
		campaign = ValueNone
	}
	if src := strings.TrimSpace(props["utm_source"]); src != "" {
		medium = strings.TrimSpace(props["utm_medium"])
		if medium == "" {
			medium = ValueNone
		}
		return src, medium, campaign, classifyMedium(medium, src)
	}
	host := referrerHost(props["referrer"])
	if host == "" {
		return SourceDirect, ValueNone, campaign, chDirect
	}
	for _, e := range searchEngines {
		if hasLabel(host, e) {
			return e, "organic", campaign, chOrganic
		}
	}
	if strings.EqualFold(host, "t.co") || strings.EqualFold(host, "x.com") {
		return host, "social", campaign, chSocial
	}
	for _, e := range socialSites {
		if hasLabel(host, e) {
			return host, "social", campaign, chSocial
		}
	}
	return host, "referral", campaign, chReferral
}

// classifyMedium maps a utm_medium (and source, for social sites tagged without a medium) to a
// channel.
func classifyMedium(medium, source string) uint8 {
	m := medium
	switch {
	case eqAny(m, "organic", "seo"):
		return chOrganic
	case eqAny(m, "cpc", "ppc", "cpm", "cpv", "cpa", "paid", "display", "banner", "paidsearch", "paid_search", "paid_social", "paidsocial", "retargeting", "affiliate"):
		return chPaid
	case hasPrefixFold(m, "paid"):
		return chPaid
	case eqAny(m, "social", "social-network", "social_network", "social-media", "sm"):
		return chSocial
	case eqAny(m, "email", "e-mail", "e_mail", "newsletter", "mail"):
		return chEmail
	case eqAny(m, "referral", "ref"):
		return chReferral
	case eqAny(m, "(none)", "none", "direct"):
		for _, e := range socialSites {
			if strings.EqualFold(source, e) {
				return chSocial
			}
		}
		if strings.EqualFold(source, "(direct)") || strings.EqualFold(source, "direct") {
			return chDirect
		}
		return chOther
	}
	return chOther
}

func eqAny(v string, opts ...string) bool {
	for _, o := range opts {
		if strings.EqualFold(v, o) {
			return true
		}
	}
	return false
}

func hasPrefixFold(v, p string) bool { return len(v) >= len(p) && strings.EqualFold(v[:len(p)], p) }

// referrerHost returns the host of a referrer URL without scheme, user info,
// port and a leading "www."; "" when there is none. It does not allocate.
func referrerHost(ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	if i := strings.Index(ref, "://"); i >= 0 {
		ref = ref[i+3:]
	} else if strings.HasPrefix(ref, "//") {
		ref = ref[2:]
	}
	if i := strings.IndexAny(ref, "/?#"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	ref = strings.TrimSuffix(ref, ".")
	if hasPrefixFold(ref, "www.") {
		ref = ref[4:]
	}
	return ref
}

// hasLabel reports whether host contains label as a whole dot-separated label (ASCII case
// insensitive), e.g. hasLabel("news.google.co.uk", "google").
func hasLabel(host, label string) bool {
	for len(host) > 0 {
		i := strings.IndexByte(host, '.')
		part := host
		if i >= 0 {
			part, host = host[:i], host[i+1:]
		} else {
			host = ""
		}
		if strings.EqualFold(part, label) {
			return true
		}
	}
	return false
}

// pagePath returns the page path of an event: props "path", else the path part of props
// "url"; query and fragment removed, trailing slash removed (except for the root). ok is
// false when the event names no page.
func pagePath(props map[string]string) (path string, ok bool) {
	p, ok := props["path"]
	if !ok || p == "" {
		u, uok := props["url"]
		if !uok || u == "" {
			return "", false
		}
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
			if j := strings.IndexAny(u, "/?#"); j >= 0 {
				u = u[j:]
			} else {
				u = "/"
			}
		}
		p = u
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		p = "/"
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p, true
}

// pageGroup is props "page_group" when present, else the first segment of the page path
// ((root) for "/"); ok is false when the event names neither.
func pageGroup(props map[string]string) (string, bool) {
	if g := strings.TrimSpace(props["page_group"]); g != "" {
		return g, true
	}
	p, ok := pagePath(props)
	if !ok {
		return "", false
	}
	p = strings.TrimLeft(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return GroupRoot, true
	}
	return p, true
}

func parseDevice(v string) uint8 {
	switch {
	case strings.EqualFold(v, "mobile"), strings.EqualFold(v, "phone"):
		return deviceMobile
	case strings.EqualFold(v, "tablet"):
		return deviceTablet
	case strings.EqualFold(v, "desktop"):
		return deviceDesktop
	}
	return deviceUnknown
}
