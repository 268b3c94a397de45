package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleFileMatchesDemo(t *testing.T) {
	c, err := Load("nudge.example.yaml")
	if err != nil {
		t.Fatalf("Load example: %v", err)
	}
	if c.Path != "nudge.example.yaml" {
		t.Errorf("Path = %q", c.Path)
	}
	d := Demo()
	if err := d.Validate(); err != nil {
		t.Fatalf("Demo().Validate: %v", err)
	}
	// Compare the sites and the timeout; Path and the kept source differ by construction.
	if !reflect.DeepEqual(c.Sites, d.Sites) {
		t.Errorf("example file and Demo() differ:\nfile: %+v\ndemo: %+v", c.Sites, d.Sites)
	}
	if c.Timeout() != 30*time.Minute || d.Timeout() != 30*time.Minute {
		t.Errorf("timeouts: file %v demo %v", c.Timeout(), d.Timeout())
	}
}

func TestExampleFileCommentsEveryField(t *testing.T) {
	data, err := os.ReadFile("nudge.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every top-level key of the first occurrence of a field must be preceded by a comment
	// line somewhere above it within its block: check the distinct keys each have a comment
	// mentioning them or directly above their first use.
	lines := strings.Split(string(data), "\n")
	seen := map[string]bool{}
	for i, l := range lines {
		tr := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		if tr == "" || strings.HasPrefix(tr, "#") {
			continue
		}
		key, rest, ok := strings.Cut(tr, ":")
		if !ok || strings.HasPrefix(rest, "//") || strings.ContainsAny(key, " /") || seen[key] {
			continue
		}
		seen[key] = true
		prev := ""
		if i > 0 {
			prev = strings.TrimSpace(lines[i-1])
		}
		if !strings.HasPrefix(prev, "#") && !strings.HasPrefix(prev, "- #") {
			t.Errorf("line %d: first use of %q has no comment above it", i+1, key)
		}
	}
	if len(seen) < 25 {
		t.Errorf("only %d distinct keys found; parse of the example is broken", len(seen))
	}
}

func TestDemoIsFresh(t *testing.T) {
	a, b := Demo(), Demo()
	a.Sites[0].Phases[0].Milestones[0] = "changed"
	if b.Sites[0].Phases[0].Milestones[0] != "view_product" {
		t.Fatal("Demo() shares state between calls")
	}
}

func TestLookups(t *testing.T) {
	c := Demo()
	other := Demo().Sites[0]
	other.ID, other.WriteKey, other.AdminKey = "other", "wk_other_0123456789abcdef", "ak_other_0123456789abcdef"
	c.Sites = append(c.Sites, other)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		lookup func(string) (*Site, bool)
		key    string
		want   string
	}{
		{"write demo", c.SiteByWriteKey, "wk_demo_0123456789abcdef", "demo"},
		{"write other", c.SiteByWriteKey, "wk_other_0123456789abcdef", "other"},
		{"admin demo", c.SiteByAdminKey, "ak_demo_0123456789abcdef", "demo"},
		{"admin key is not a write key", c.SiteByWriteKey, "ak_demo_0123456789abcdef", ""},
		{"write key is not an admin key", c.SiteByAdminKey, "wk_demo_0123456789abcdef", ""},
		{"empty", c.SiteByWriteKey, "", ""},
		{"prefix", c.SiteByWriteKey, "wk_demo_0123456789abcde", ""},
		{"id", c.Site, "other", "other"},
		{"unknown id", c.Site, "nope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := tt.lookup(tt.key)
			if ok != (tt.want != "") {
				t.Fatalf("ok = %v, want %v", ok, tt.want != "")
			}
			if ok && s.ID != tt.want {
				t.Fatalf("site = %q, want %q", s.ID, tt.want)
			}
		})
	}
}

func TestFeatureSpecAndConsent(t *testing.T) {
	s := &Demo().Sites[0]
	spec := s.FeatureSpec()
	if spec.MacroConversion != "purchase" || len(spec.Phases) != 3 || spec.Phases[1].Name != "cart" ||
		spec.Phases[1].Milestones[0] != "add_to_cart" || len(spec.SecondaryActions) != 4 || spec.TimeZone != "UTC" {
		t.Fatalf("spec = %+v", spec)
	}
	spec.Phases[0].Milestones[0] = "x"
	if s.Phases[0].Milestones[0] != "view_product" {
		t.Fatal("FeatureSpec aliases the site's slices")
	}
	if !s.ConsentByDefault() {
		t.Error("demo consent default should be true")
	}
	s.ConsentDefault = nil
	if !s.ConsentByDefault() {
		t.Error("nil consent default should mean true")
	}
	f := false
	s.ConsentDefault = &f
	if s.ConsentByDefault() {
		t.Error("explicit false ignored")
	}
	if iv, ok := s.Intervention("chat_offer"); !ok || iv.Eligibility.MinPageViews != 3 {
		t.Errorf("Intervention(chat_offer) = %+v, %v", iv, ok)
	}
}

// base is a valid one-site config; cases edit it by string replacement so line numbers are
// predictable.
const base = `session_timeout: 30m
sites:
  - id: shop
    write_key: wk_shop_0123456789abcdef
    admin_key: ak_shop_0123456789abcdef
    allowed_origins: [https://shop.example]
    time_zone: Europe/Paris
    macro_conversion:
      name: purchase
      value: 50
    phases:
      - name: browse
        milestones: [view_product]
      - name: cart
        milestones: [add_to_cart]
    secondary_actions: [share]
    interventions:
      - id: disc
        kind: popup
        cost: 2
        eligibility:
          phases: [cart]
          devices: [mobile]
        caps:
          per_session: 1
    policy:
      holdout_share: 0.1
      exploration_share: 0.1
      budget:
        max_share: 0.5
`

func TestBaseIsValid(t *testing.T) {
	c, err := Parse("nudge.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sites[0].Location().String() != "Europe/Paris" {
		t.Errorf("location %v", c.Sites[0].Location())
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // replacement applied to base
		want     []string
	}{
		{"holdout out of range", "holdout_share: 0.1", "holdout_share: 1.5",
			[]string{"nudge.yaml:27:22: sites[0].policy.holdout_share: must be between 0 and 1, got 1.5"}},
		{"shares sum", "holdout_share: 0.1", "holdout_share: 0.95",
			[]string{"nudge.yaml:28:26: sites[0].policy.exploration_share: holdout_share + exploration_share must be < 1"}},
		{"negative exploration", "exploration_share: 0.1", "exploration_share: -0.1",
			[]string{"sites[0].policy.exploration_share: must be between 0 and 1"}},
		{"max share", "max_share: 0.5", "max_share: 2",
			[]string{"nudge.yaml:30:20: sites[0].policy.budget.max_share: must be between 0 and 1"}},
		{"unknown field", "    time_zone:", "    time_zon:",
			[]string{"nudge.yaml:7:5: sites[0].time_zon: unknown field (valid: id, name, write_key, admin_key, allowed_origins, time_zone,"}},
		{"unknown nested field", "holdout_share: 0.1", "holdout_shar: 0.1",
			[]string{"nudge.yaml:27:7: sites[0].policy.holdout_shar: unknown field (valid: holdout_share, exploration_share, threshold, budget, seed)"}},
		{"unknown fields all reported", "  - id: shop\n", "  - id: shop\n    colour: red\n    macro_conversion_value: 3\n",
			[]string{"nudge.yaml:4:5: sites[0].colour: unknown field", "nudge.yaml:5:5: sites[0].macro_conversion_value: unknown field"}},
		{"unknown top-level", "session_timeout: 30m\n", "session_timeout: 30m\nsite: []\n",
			[]string{"nudge.yaml:2:1: site: unknown field (valid: session_timeout, sites)"}},
		{"unknown in single-key mapping", "max_share: 0.5", "max_shares: 0.5",
			[]string{"nudge.yaml:30:9: sites[0].policy.budget.max_shares: unknown field (valid: max_share, max_spend_per_day)"}},
		{"unknown in inline mapping", "caps:\n          per_session: 1", "caps: {per_sesion: 1}",
			[]string{"sites[0].interventions[0].caps.per_sesion: unknown field"}},
		{"unknown in flow mapping", "[cart]", "[cart]\n          weekdays: [mon]",
			[]string{"sites[0].interventions[0].eligibility.weekdays: unknown field"}},
		{"syntax", "allowed_origins: [https://shop.example]", "allowed_origins: [https://shop.example",
			[]string{"nudge.yaml:"}},
		{"missing id", "  - id: shop\n", "  - name: shop\n",
			[]string{"sites[0].id: must not be empty"}},
		{"bad id", "  - id: shop\n", "  - id: sh op\n",
			[]string{"nudge.yaml:3:9: sites[0].id: must contain only"}},
		{"short key", "write_key: wk_shop_0123456789abcdef", "write_key: short",
			[]string{"nudge.yaml:4:16: sites[0].write_key: must be at least 16 characters, got 5"}},
		{"missing admin key", "    admin_key: ak_shop_0123456789abcdef\n", "",
			[]string{"sites[0].admin_key: must not be empty"}},
		{"same keys", "ak_shop_0123456789abcdef", "wk_shop_0123456789abcdef",
			[]string{"nudge.yaml:5:16: sites[0].admin_key: must differ from write_key"}},
		{"origin with path", "https://shop.example]", "https://shop.example/x]",
			[]string{"nudge.yaml:6:23: sites[0].allowed_origins[0]:", "scheme://host[:port]"}},
		{"origin no scheme", "https://shop.example]", "shop.example]",
			[]string{"sites[0].allowed_origins[0]:"}},
		{"origin bad port", "https://shop.example]", "https://shop.example:99999]",
			[]string{"sites[0].allowed_origins[0]:", "invalid port"}},
		{"time zone", "Europe/Paris", "Mars/Olympus",
			[]string{"nudge.yaml:7:16: sites[0].time_zone: unknown time zone \"Mars/Olympus\""}},
		{"bad duration", "30m", "thirty",
			[]string{"nudge.yaml:1:18: session_timeout: invalid duration \"thirty\""}},
		{"negative value", "value: 50", "value: -5",
			[]string{"sites[0].macro_conversion.value: must be >= 0"}},
		{"empty phase name", "name: cart", "name: \"\"",
			[]string{"sites[0].phases[1].name: must not be empty"}},
		{"duplicate phase", "name: cart", "name: browse",
			[]string{"nudge.yaml:14:15: sites[0].phases[1].name: duplicate phase \"browse\"",
				"sites[0].interventions[0].eligibility.phases[0]: unknown phase \"cart\""}},
		{"duplicate milestone", "[add_to_cart]", "[view_product]",
			[]string{"nudge.yaml:15:22: sites[0].phases[1].milestones[0]: duplicate name \"view_product\""}},
		{"secondary clashes with macro", "[share]", "[purchase]",
			[]string{"sites[0].secondary_actions[0]: duplicate name \"purchase\""}},
		{"empty secondary", "[share]", "[\"\"]",
			[]string{"sites[0].secondary_actions[0]: must not be empty"}},
		{"negative cost", "cost: 2", "cost: -1",
			[]string{"nudge.yaml:20:15: sites[0].interventions[0].cost: must be >= 0, got -1"}},
		{"unknown eligibility phase", "phases: [cart]", "phases: [pay]",
			[]string{"sites[0].interventions[0].eligibility.phases[0]: unknown phase \"pay\" (declared: browse, cart)"}},
		{"bad device", "[mobile]", "[phone]",
			[]string{"nudge.yaml:23:21: sites[0].interventions[0].eligibility.devices[0]: unknown device \"phone\""}},
		{"negative cap", "per_session: 1", "per_session: -1",
			[]string{"sites[0].interventions[0].caps.per_session: must be >= 0"}},
		{"missing kind", "        kind: popup\n", "",
			[]string{"sites[0].interventions[0].kind: must not be empty"}},
		{"duplicate intervention", "    policy:\n", "      - id: disc\n        kind: x\n    policy:\n",
			[]string{"sites[0].interventions[1].id: duplicate intervention id \"disc\""}},
		{"no sites", base, "sites: []\n",
			[]string{"sites: at least one site is required"}},
		{"wrong type", "cost: 2", "cost: [2]",
			[]string{"nudge.yaml:20:15:"}},
		{"several at once", "holdout_share: 0.1", "holdout_share: 7\n      threshold: 0\n      seed: 1",
			[]string{"holdout_share: must be between 0 and 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("bad test: %q not in base", tt.old)
			}
			src := strings.Replace(base, tt.old, tt.new, 1)
			_, err := Parse("nudge.yaml", []byte(src))
			if err == nil {
				t.Fatalf("no error for:\n%s", src)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestMultipleErrorsReportedTogether(t *testing.T) {
	src := strings.NewReplacer("holdout_share: 0.1", "holdout_share: 1.5", "cost: 2", "cost: -2", "[mobile]", "[phone]").Replace(base)
	_, err := Parse("nudge.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%v", len(lines), err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "nudge.yaml:") {
			t.Errorf("error without position: %q", l)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line == 0 || ce.Field == "" {
		t.Errorf("errors.As(*Error) = %+v", ce)
	}
}

func TestDuplicatesAcrossSites(t *testing.T) {
	c := Demo()
	c.Sites = append(c.Sites, Demo().Sites[0])
	err := c.Validate()
	for _, w := range []string{`sites[1].id: duplicate site id "demo"`, "sites[1].write_key: key is already used by sites[0].write_key", "sites[1].admin_key: key is already used by sites[0].admin_key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	// One site's admin key used as another's write key is also a clash.
	c = Demo()
	o := Demo().Sites[0]
	o.ID, o.WriteKey, o.AdminKey = "o", c.Sites[0].AdminKey, "ak_other_0123456789abcdef"
	c.Sites = append(c.Sites, o)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sites[1].write_key: key is already used by sites[0].admin_key") {
		t.Errorf("cross-role key clash not reported: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("does-not-exist.yaml")
	if err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	d := Demo()
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("demo.yaml", out)
	if err != nil {
		t.Fatalf("re-parse:\n%s\n%v", out, err)
	}
	// Empty lists come back as empty rather than nil, so compare the encodings.
	out2, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(out2) || c.Timeout() != d.Timeout() || c.Sites[0].Policy != d.Sites[0].Policy {
		t.Fatalf("round trip differs:\n%s\n---\n%s", out, out2)
	}
}
