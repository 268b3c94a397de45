// Package config owns nudge's site configuration: the YAML file that declares each site's
// keys, allowed origins, macro conversion, phases and milestones, secondary actions,
// intervention catalogue and policy; its loading and validation (errors name the file, line,
// column and field); and the built-in demo site used when no file is given.
//
// It imports features/ only (for the Spec it derives) and must not import badger, echo,
// model/, training/ or serve/.
package config

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/nudgehq/nudge/features"
)

// ErrInvalid is matched (errors.Is) by every error that Load, Parse and Validate return for
// a bad configuration, as opposed to an unreadable file.
var ErrInvalid = errors.New("config: invalid configuration")

// DefaultSessionTimeout is the inactivity gap after which a new session starts.
const DefaultSessionTimeout = 30 * time.Minute

// MinKeyLength is the minimum length of write and admin keys.
const MinKeyLength = 16

// Devices are the device classes eligibility rules may name.
var Devices = []string{"mobile", "tablet", "desktop"}

// Config is the whole configuration file.
type Config struct {
	// SessionTimeout is the inactivity gap that ends a session; 0 means DefaultSessionTimeout.
	SessionTimeout Duration `yaml:"session_timeout"`
	Sites          []Site   `yaml:"sites"`
	// Path is the file the configuration was loaded from ("" for Demo or Parse of bytes).
	Path string `yaml:"-"`

	src []byte // the YAML source, kept to locate fields in validation errors
}

// Duration is a time.Duration written in YAML as a Go duration string ("30m", "1h30m").
type Duration struct {
	time.Duration
	bad string // an unparsable value, reported by Validate with its position
}

// UnmarshalYAML parses a duration string. An unparsable string is kept and reported by
// Validate, which knows the field's position.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.bad = s
		return nil
	}
	d.Duration, d.bad = v, ""
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Site is one website tracked by nudge.
type Site struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// WriteKey is browser-safe: it authorises ingest and decide only.
	WriteKey string `yaml:"write_key"`
	// AdminKey is secret: it authorises reads, training and administration.
	AdminKey       string   `yaml:"admin_key"`
	AllowedOrigins []string `yaml:"allowed_origins"`
	// TimeZone is an IANA name used for hour-of-day features and report date ranges.
	TimeZone         string         `yaml:"time_zone"`
	Macro            Macro          `yaml:"macro_conversion"`
	Phases           []Phase        `yaml:"phases"`
	SecondaryActions []string       `yaml:"secondary_actions"`
	Interventions    []Intervention `yaml:"interventions"`
	Policy           Policy         `yaml:"policy"`
	// ConsentDefault is the consent assumed when an event does not say; nil means true.
	ConsentDefault *bool `yaml:"consent_default"`
	// HashBuckets is the number of buckets per hashed categorical feature; 0 means default.
	HashBuckets int `yaml:"hash_buckets"`
}

// Macro is the one business goal of a site.
type Macro struct {
	Name  string  `yaml:"name"`
	Value float64 `yaml:"value"`
}

// Phase is a step of the journey with its process milestones.
type Phase struct {
	Name       string   `yaml:"name"`
	Milestones []string `yaml:"milestones"`
}

// Intervention is something the site can show.
type Intervention struct {
	ID          string      `yaml:"id"`
	Kind        string      `yaml:"kind"`
	Cost        float64     `yaml:"cost"`
	Eligibility Eligibility `yaml:"eligibility"`
	Caps        Caps        `yaml:"caps"`
}

// Eligibility restricts where an intervention may be shown; empty lists mean "any".
type Eligibility struct {
	Phases       []string `yaml:"phases"`
	Devices      []string `yaml:"devices"`
	MinPageViews int      `yaml:"min_page_views"`
	PathPrefixes []string `yaml:"path_prefixes"`
}

// Caps are frequency caps; 0 means unlimited.
type Caps struct {
	PerSession       int `yaml:"per_session"`
	PerVisitorPerDay int `yaml:"per_visitor_per_day"`
}

// Policy decides when to intervene.
type Policy struct {
	// HoldoutShare of sessions is never intervened on (the control group).
	HoldoutShare float64 `yaml:"holdout_share"`
	// ExplorationShare of sessions gets a random eligible intervention.
	ExplorationShare float64 `yaml:"exploration_share"`
	// Threshold is the minimum expected value (uplift x value - cost) to intervene.
	Threshold float64 `yaml:"threshold"`
	Budget    Budget  `yaml:"budget"`
	// Seed makes the randomised assignment reproducible.
	Seed uint64 `yaml:"seed"`
}

// Budget limits how often and how much the policy spends.
type Budget struct {
	// MaxShare is the maximum share of sessions intervened on; 0 means no limit.
	MaxShare float64 `yaml:"max_share"`
	// MaxSpendPerDay is the maximum total intervention cost per day; 0 means no limit.
	MaxSpendPerDay float64 `yaml:"max_spend_per_day"`
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(filepath.Base(path), data)
	if err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// Parse decodes and validates a configuration; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	if errs := unknownFields(name, f); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var c Config
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(name, err)
	}
	c.Path = name
	c.src = data
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// yamlError converts a decode error to an *Error with the position of its token.
func yamlError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		p := ye.GetToken().Position
		return &Error{File: name, Line: p.Line, Column: p.Column, Message: ye.GetMessage()}
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return &Error{File: name, Message: msg}
}

// Error is one problem in a configuration, located in its source. It matches ErrInvalid
// with errors.Is.
type Error struct {
	File         string
	Line, Column int    // 0 when unknown
	Field        string // e.g. "sites[0].policy.holdout_share"; "" for syntax errors
	Message      string
}

// Error formats "file:line:col: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap makes every Error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Validate checks the whole configuration and reports every problem found together
// (errors.Join of *Error values, each naming the file, line, column and field and matching
// ErrInvalid).
func (c *Config) Validate() error {
	v := &validator{name: c.Path}
	if v.name == "" {
		v.name = "config"
	}
	if len(c.src) > 0 {
		if f, err := parser.ParseBytes(c.src, 0); err == nil {
			v.file = f
		}
	}
	c.validate(v)
	if len(v.errs) == 0 {
		return nil
	}
	return errors.Join(v.errs...)
}

func (c *Config) validate(v *validator) {
	if c.SessionTimeout.bad != "" {
		v.add("session_timeout", "invalid duration %q, want e.g. \"30m\"", c.SessionTimeout.bad)
	} else if c.SessionTimeout.Duration < 0 {
		v.add("session_timeout", "must not be negative, got %s", c.SessionTimeout.Duration)
	} else if c.SessionTimeout.Duration > 0 && c.SessionTimeout.Duration < time.Minute {
		v.add("session_timeout", "must be at least 1m, got %s", c.SessionTimeout.Duration)
	}
	if len(c.Sites) == 0 {
		v.add("sites", "at least one site is required")
	}
	ids := map[string]string{}
	keys := map[string]string{}
	for i := range c.Sites {
		s := &c.Sites[i]
		p := fmt.Sprintf("sites[%d]", i)
		s.validate(v, p)
		if s.ID != "" {
			if prev, ok := ids[s.ID]; ok {
				v.add(p+".id", "duplicate site id %q (also %s)", s.ID, prev)
			} else {
				ids[s.ID] = p
			}
		}
		for _, k := range []struct{ field, key string }{{"write_key", s.WriteKey}, {"admin_key", s.AdminKey}} {
			if k.key == "" {
				continue
			}
			if prev, ok := keys[k.key]; ok && !strings.HasPrefix(prev, p+".") {
				v.add(p+"."+k.field, "key is already used by %s", prev)
			} else if !ok {
				keys[k.key] = p + "." + k.field
			}
		}
	}
}

func (s *Site) validate(v *validator, p string) {
	if s.ID == "" {
		v.add(p+".id", "must not be empty")
	} else if !validID(s.ID) {
		v.add(p+".id", "must contain only letters, digits, '-', '_' and '.', got %q", s.ID)
	}
	checkKey := func(field, key string) {
		switch {
		case key == "":
			v.add(p+"."+field, "must not be empty")
		case len(key) < MinKeyLength:
			v.add(p+"."+field, "must be at least %d characters, got %d", MinKeyLength, len(key))
		case strings.ContainsAny(key, " \t\r\n"):
			v.add(p+"."+field, "must not contain white space")
		}
	}
	checkKey("write_key", s.WriteKey)
	checkKey("admin_key", s.AdminKey)
	if s.WriteKey != "" && s.WriteKey == s.AdminKey {
		v.add(p+".admin_key", "must differ from write_key (the write key is public)")
	}
	seenOrigin := map[string]bool{}
	for i, o := range s.AllowedOrigins {
		f := fmt.Sprintf("%s.allowed_origins[%d]", p, i)
		if err := checkOrigin(o); err != nil {
			v.add(f, "%v", err)
		} else if seenOrigin[o] {
			v.add(f, "duplicate origin %q", o)
		}
		seenOrigin[o] = true
	}
	if s.TimeZone != "" {
		if _, err := time.LoadLocation(s.TimeZone); err != nil {
			v.add(p+".time_zone", "unknown time zone %q", s.TimeZone)
		}
	}
	if s.Macro.Name == "" {
		v.add(p+".macro_conversion.name", "must not be empty")
	}
	if s.Macro.Value < 0 {
		v.add(p+".macro_conversion.value", "must be >= 0, got %g", s.Macro.Value)
	}
	// Every event name a site declares must be distinct: a name maps to one role.
	names := map[string]string{}
	if s.Macro.Name != "" {
		names[s.Macro.Name] = p + ".macro_conversion.name"
	}
	claim := func(field, name string) {
		if name == "" {
			v.add(field, "must not be empty")
			return
		}
		if prev, ok := names[name]; ok {
			v.add(field, "duplicate name %q (also %s)", name, prev)
			return
		}
		names[name] = field
	}
	phases := map[string]bool{}
	for i, ph := range s.Phases {
		f := fmt.Sprintf("%s.phases[%d]", p, i)
		if ph.Name == "" {
			v.add(f+".name", "must not be empty")
		} else if phases[ph.Name] {
			v.add(f+".name", "duplicate phase %q", ph.Name)
		}
		phases[ph.Name] = true
		for j, m := range ph.Milestones {
			claim(fmt.Sprintf("%s.milestones[%d]", f, j), m)
		}
	}
	for i, a := range s.SecondaryActions {
		claim(fmt.Sprintf("%s.secondary_actions[%d]", p, i), a)
	}
	iids := map[string]bool{}
	for i := range s.Interventions {
		in := &s.Interventions[i]
		f := fmt.Sprintf("%s.interventions[%d]", p, i)
		if in.ID == "" {
			v.add(f+".id", "must not be empty")
		} else if iids[in.ID] {
			v.add(f+".id", "duplicate intervention id %q", in.ID)
		} else if !validID(in.ID) {
			v.add(f+".id", "must contain only letters, digits, '-', '_' and '.', got %q", in.ID)
		}
		iids[in.ID] = true
		if in.Kind == "" {
			v.add(f+".kind", "must not be empty")
		}
		if in.Cost < 0 {
			v.add(f+".cost", "must be >= 0, got %g", in.Cost)
		}
		for j, ph := range in.Eligibility.Phases {
			if !phases[ph] {
				v.add(fmt.Sprintf("%s.eligibility.phases[%d]", f, j), "unknown phase %q (declared: %s)", ph, strings.Join(phaseNames(s.Phases), ", "))
			}
		}
		for j, d := range in.Eligibility.Devices {
			if !contains(Devices, d) {
				v.add(fmt.Sprintf("%s.eligibility.devices[%d]", f, j), "unknown device %q (valid: %s)", d, strings.Join(Devices, ", "))
			}
		}
		if in.Eligibility.MinPageViews < 0 {
			v.add(f+".eligibility.min_page_views", "must be >= 0, got %d", in.Eligibility.MinPageViews)
		}
		for j, pp := range in.Eligibility.PathPrefixes {
			if !strings.HasPrefix(pp, "/") {
				v.add(fmt.Sprintf("%s.eligibility.path_prefixes[%d]", f, j), "must start with '/', got %q", pp)
			}
		}
		if in.Caps.PerSession < 0 {
			v.add(f+".caps.per_session", "must be >= 0, got %d", in.Caps.PerSession)
		}
		if in.Caps.PerVisitorPerDay < 0 {
			v.add(f+".caps.per_visitor_per_day", "must be >= 0, got %d", in.Caps.PerVisitorPerDay)
		}
	}
	pol := &s.Policy
	share := func(field string, x float64) bool {
		if !(x >= 0 && x <= 1) {
			v.add(p+".policy."+field, "must be between 0 and 1, got %g", x)
			return false
		}
		return true
	}
	okH := share("holdout_share", pol.HoldoutShare)
	okE := share("exploration_share", pol.ExplorationShare)
	if okH && okE && pol.HoldoutShare+pol.ExplorationShare >= 1 {
		v.add(p+".policy.exploration_share", "holdout_share + exploration_share must be < 1, got %g", pol.HoldoutShare+pol.ExplorationShare)
	}
	share("budget.max_share", pol.Budget.MaxShare)
	if pol.Budget.MaxSpendPerDay < 0 {
		v.add(p+".policy.budget.max_spend_per_day", "must be >= 0, got %g", pol.Budget.MaxSpendPerDay)
	}
	if s.HashBuckets < 0 || s.HashBuckets > 1<<16 {
		v.add(p+".hash_buckets", "must be between 0 and 65536, got %d", s.HashBuckets)
	}
}

func checkOrigin(o string) error {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return fmt.Errorf("origin %q must look like scheme://host[:port] with scheme http or https", o)
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return fmt.Errorf("origin %q must look like scheme://host[:port] (no path, query or user)", o)
	}
	host, port, hasPort := strings.Cut(rest, ":")
	if strings.HasPrefix(rest, "[") { // IPv6 literal
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return fmt.Errorf("origin %q: unterminated IPv6 literal", o)
		}
		host = rest[:end+1]
		port, hasPort = strings.CutPrefix(rest[end+1:], ":")
		if !hasPort && rest[end+1:] != "" {
			return fmt.Errorf("origin %q must look like scheme://host[:port]", o)
		}
	}
	if host == "" {
		return fmt.Errorf("origin %q has no host", o)
	}
	if hasPort {
		n := 0
		for _, r := range port {
			if r < '0' || r > '9' {
				return fmt.Errorf("origin %q has an invalid port", o)
			}
			n = n*10 + int(r-'0')
			if n > 65535 {
				return fmt.Errorf("origin %q has an invalid port", o)
			}
		}
		if port == "" || n == 0 {
			return fmt.Errorf("origin %q has an invalid port", o)
		}
	}
	if strings.ToLower(o) != o {
		return fmt.Errorf("origin %q must be lower case (browsers send lower-case origins)", o)
	}
	return nil
}

func validID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return len(s) <= 128
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func phaseNames(ps []Phase) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// validator collects errors with their source positions.
type validator struct {
	name string
	file *ast.File
	errs []error
}

// add records an error for field (a path like "sites[0].policy.holdout_share").
func (v *validator) add(field, format string, args ...any) {
	line, col := v.position(field)
	v.errs = append(v.errs, &Error{File: v.name, Line: line, Column: col, Field: field, Message: fmt.Sprintf(format, args...)})
}

// position finds the line and column of field in the source, falling back to the nearest
// ancestor present (a missing field is reported where its parent is).
func (v *validator) position(field string) (int, int) {
	if v.file == nil {
		return 0, 0
	}
	for f := field; f != ""; f = parentPath(f) {
		p, err := yaml.PathString("$." + f)
		if err != nil {
			continue
		}
		n, err := p.FilterFile(v.file)
		if err != nil || n == nil || n.GetToken() == nil {
			continue
		}
		pos := n.GetToken().Position
		return pos.Line, pos.Column
	}
	return 0, 0
}

func parentPath(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i <= 0 {
		return ""
	}
	return f[:i]
}

// Site returns the site with the given id.
func (c *Config) Site(id string) (*Site, bool) {
	for i := range c.Sites {
		if c.Sites[i].ID == id {
			return &c.Sites[i], true
		}
	}
	return nil, false
}

// SiteByWriteKey returns the site whose write key is key. The comparison is constant-time
// and every site is compared, so timing reveals nothing about the keys.
func (c *Config) SiteByWriteKey(key string) (*Site, bool) {
	return c.byKey(key, func(s *Site) string { return s.WriteKey })
}

// SiteByAdminKey returns the site whose admin key is key (constant-time, like
// SiteByWriteKey).
func (c *Config) SiteByAdminKey(key string) (*Site, bool) {
	return c.byKey(key, func(s *Site) string { return s.AdminKey })
}

func (c *Config) byKey(key string, get func(*Site) string) (*Site, bool) {
	var found *Site
	if key == "" {
		return nil, false
	}
	k := []byte(key)
	for i := range c.Sites {
		if subtle.ConstantTimeCompare(k, []byte(get(&c.Sites[i]))) == 1 && found == nil {
			found = &c.Sites[i]
		}
	}
	return found, found != nil
}

// Timeout returns the session inactivity timeout (DefaultSessionTimeout when unset).
func (c *Config) Timeout() time.Duration {
	if c.SessionTimeout.Duration <= 0 {
		return DefaultSessionTimeout
	}
	return c.SessionTimeout.Duration
}

// FeatureSpec returns what the site declares that its features depend on.
func (s *Site) FeatureSpec() features.Spec {
	ph := make([]features.Phase, len(s.Phases))
	for i, p := range s.Phases {
		ph[i] = features.Phase{Name: p.Name, Milestones: append([]string(nil), p.Milestones...)}
	}
	return features.Spec{
		MacroConversion:  s.Macro.Name,
		Phases:           ph,
		SecondaryActions: append([]string(nil), s.SecondaryActions...),
		HashBuckets:      s.HashBuckets,
		TimeZone:         s.TimeZone,
	}
}

// ConsentByDefault reports the consent assumed for events that do not carry one.
func (s *Site) ConsentByDefault() bool { return s.ConsentDefault == nil || *s.ConsentDefault }

// Location returns the site's time zone (UTC when unset or unknown).
func (s *Site) Location() *time.Location {
	if s.TimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Intervention returns the site's intervention with the given id.
func (s *Site) Intervention(id string) (*Intervention, bool) {
	for i := range s.Interventions {
		if s.Interventions[i].ID == id {
			return &s.Interventions[i], true
		}
	}
	return nil, false
}

// Marshal encodes the configuration as YAML (without comments).
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf, yaml.Indent(2), yaml.IndentSequence(true))
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	return buf.Bytes(), nil
}
