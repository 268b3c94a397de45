package features

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

// base is Monday 2026-11-23 13:30:00 UTC.
var base = time.Date(2026, 11, 23, 13, 30, 0, 0, time.UTC).UnixMilli()

// at returns base plus sec seconds.
func at(sec float64) int64 { return base + int64(sec*1000) }

var shopSpec = Spec{
	MacroConversion: "purchase",
	Phases: []Phase{
		{Name: "Browse", Milestones: []string{"view_product"}},
		{Name: "Cart", Milestones: []string{"add_to_cart"}},
		{Name: "Checkout", Milestones: []string{"begin_checkout", "add_payment"}},
	},
	SecondaryActions: []string{"newsletter_signup", "share"},
}

func mustSchema(t testing.TB, spec Spec) *Schema {
	t.Helper()
	s, err := NewSchema(spec)
	if err != nil {
		t.Fatalf("NewSchema: %v", err)
	}
	return s
}

// Event constructors.
func pv(ts int64, path string, kv ...string) Event {
	p := props(kv...)
	if path != "" {
		p["path"] = path
	}
	return Event{Type: PageView, TS: ts, Props: p}
}

func named(typ EventType, ts int64, name string, value float64, kv ...string) Event {
	return Event{Type: typ, TS: ts, Name: name, Value: value, Props: props(kv...)}
}

func props(kv ...string) map[string]string {
	if len(kv)%2 != 0 {
		panic("props: odd key/value list")
	}
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// vectorMap folds evs in order into a fresh state and returns the vector as of asOf by name.
func vectorMap(t *testing.T, s *Schema, hist VisitorHistory, evs []Event, asOf int64) map[string]float64 {
	t.Helper()
	st := s.NewState(hist)
	for i := range evs {
		s.Fold(&st, &evs[i])
	}
	out := make([]float64, s.Len())
	if err := s.Vector(&st, asOf, out); err != nil {
		t.Fatalf("Vector: %v", err)
	}
	m := make(map[string]float64, len(out))
	for i, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("feature %s = %v", s.Names[i], v)
		}
		m[s.Names[i]] = v
	}
	return m
}

type featureCase struct {
	name string
	hist VisitorHistory
	evs  []Event
	asOf int64 // 0 means the last event's TS
	want map[string]float64
}

func runCases(t *testing.T, spec Spec, cases []featureCase) {
	t.Helper()
	s := mustSchema(t, spec)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asOf := tc.asOf
			if asOf == 0 {
				for _, e := range tc.evs {
					asOf = max(asOf, e.TS)
				}
			}
			got := vectorMap(t, s, tc.hist, tc.evs, asOf)
			for name, want := range tc.want {
				g, ok := got[name]
				if !ok {
					t.Fatalf("no feature %q", name)
				}
				if math.Abs(g-want) > 1e-9 {
					t.Errorf("%s = %v, want %v", name, g, want)
				}
			}
		})
	}
}

func TestTimeAndActivity(t *testing.T) {
	runCases(t, shopSpec, []featureCase{
		{name: "no events", asOf: at(0), want: map[string]float64{
			"events": 0, "time_on_site_s": 0, "time_since_start_s": 0, "time_since_last_event_s": 0, "active_time_s": 0,
		}},
		{name: "gaps capped at five minutes", evs: []Event{pv(at(0), "/"), pv(at(60), "/a"), pv(at(660), "/b")}, asOf: at(720),
			want: map[string]float64{
				"events": 3, "time_on_site_s": 660, "time_since_start_s": 720, "time_since_last_event_s": 60,
				"active_time_s": 60 + 300, "engaged_time_s": 0,
			}},
		{name: "engaged_ms added to active time", evs: []Event{pv(at(0), "/"), named(Custom, at(30), "page_hidden", 0, "engaged_ms", "12500")},
			want: map[string]float64{"active_time_s": 30 + 12.5, "engaged_time_s": 12.5, "time_on_site_s": 30}},
		{name: "bad engaged_ms ignored", evs: []Event{
			named(Custom, at(0), "x", 0, "engaged_ms", "NaN"), named(Custom, at(1), "x", 0, "engaged_ms", "-4"),
			named(Custom, at(2), "x", 0, "engaged_ms", "abc"), named(Custom, at(3), "x", 0, "engaged_ms", "+Inf"),
		}, want: map[string]float64{"engaged_time_s": 0, "active_time_s": 3}},
		{name: "out of order events never go negative", evs: []Event{
			pv(at(100), "/"), pv(at(50), "/late-before-start"), pv(at(200), "/c"), pv(at(150), "/late-inside"),
		}, asOf: at(200), want: map[string]float64{
			"time_on_site_s": 150, "active_time_s": 50 + 100, "time_since_start_s": 150, "time_since_last_event_s": 0, "events": 4,
		}},
		{name: "asOf before the session clamps to zero", evs: []Event{pv(at(100), "/")}, asOf: at(10),
			want: map[string]float64{"time_since_start_s": 0, "time_since_last_event_s": 0, "time_on_site_s": 0}},
		{name: "scroll depth is the maximum, capped", evs: []Event{
			pv(at(0), "/", "scroll_pct", "35"), pv(at(1), "/", "scroll_pct", "80.5"), pv(at(2), "/", "scroll_pct", "NaN"),
			pv(at(3), "/", "scroll_pct", "-1"),
		}, want: map[string]float64{"max_scroll_pct": 80.5}},
		{name: "scroll above 100 is 100", evs: []Event{pv(at(0), "/", "scroll_pct", "250")}, want: map[string]float64{"max_scroll_pct": 100}},
	})
}

func TestPages(t *testing.T) {
	many := make([]Event, 100)
	for i := range many {
		many[i] = pv(at(float64(i)), fmt.Sprintf("/p/%d", i))
	}
	runCases(t, shopSpec, []featureCase{
		{name: "normalised paths", evs: []Event{
			pv(at(0), "/a"), pv(at(1), "/a?x=1"), pv(at(2), "/a/"), pv(at(3), "/b#top"),
			{Type: PageView, TS: at(4), Props: props("url", "https://shop.example/c?q=1")},
			{Type: PageView, TS: at(5), Props: props("url", "https://shop.example")},
			pv(at(6), "/"),
		}, want: map[string]float64{"page_views": 7, "unique_pages": 4}},
		{name: "page view without a page counts once", evs: []Event{
			{Type: PageView, TS: at(0)}, {Type: PageView, TS: at(1)}, pv(at(2), "/x"),
		}, want: map[string]float64{"page_views": 3, "unique_pages": 2}},
		{name: "paths are case sensitive", evs: []Event{pv(at(0), "/A"), pv(at(1), "/a")},
			want: map[string]float64{"unique_pages": 2}},
		{name: "unique pages saturate at the cap", evs: many,
			want: map[string]float64{"page_views": 100, "unique_pages": MaxUniquePages}},
		{name: "only page views are pages", evs: []Event{
			named(Click, at(0), "cta", 0, "path", "/x"), named(Custom, at(1), "y", 0, "path", "/y"), named(Click, at(2), "", 0),
		}, want: map[string]float64{"page_views": 0, "unique_pages": 0, "clicks": 2}},
	})
}

func TestErrors(t *testing.T) {
	runCases(t, shopSpec, []featureCase{
		{name: "kinds and rate", evs: []Event{
			pv(at(0), "/"), pv(at(1), "/a"), pv(at(2), "/b"), pv(at(3), "/c"),
			named(Error, at(4), "TypeError", 0, "error_kind", "client"),
			named(Error, at(5), "invalid email", 0, "error_kind", "form"),
			named(Error, at(6), "other", 0),
			named(Custom, at(7), "checkout_form_error", 0, "error_kind", "Form"),
		}, want: map[string]float64{"errors": 4, "errors_client": 1, "errors_form": 2, "error_rate_per_page": 1}},
		{name: "rate without page views", evs: []Event{
			named(Error, at(0), "e", 0, "error_kind", "client"), named(Error, at(1), "e", 0, "error_kind", "client"),
		}, want: map[string]float64{"errors": 2, "errors_client": 2, "error_rate_per_page": 2}},
		{name: "none", evs: []Event{pv(at(0), "/")}, want: map[string]float64{"errors": 0, "error_rate_per_page": 0}},
	})
}

func TestMilestonesAndPhases(t *testing.T) {
	runCases(t, shopSpec, []featureCase{
		{name: "nothing reached", evs: []Event{pv(at(0), "/")}, want: map[string]float64{
			"funnel_phase": 0, "phase_none": 1, "phase_browse": 0, "ms_view_product_count": 0, "ms_view_product_reached": 0,
		}},
		{name: "counts and deepest phase", evs: []Event{
			named(MicroConversion, at(0), "view_product", 0), named(MicroConversion, at(1), "view_product", 0),
			named(Click, at(2), "add_to_cart", 10),
		}, want: map[string]float64{
			"ms_view_product_count": 2, "ms_view_product_reached": 1, "ms_add_to_cart_count": 1, "ms_add_to_cart_reached": 1,
			"ms_begin_checkout_reached": 0, "funnel_phase": 2, "phase_none": 0, "phase_browse": 0, "phase_cart": 1, "phase_checkout": 0,
		}},
		{name: "a later milestone alone sets its phase", evs: []Event{named(Custom, at(0), "add_payment", 0)},
			want: map[string]float64{"funnel_phase": 3, "phase_checkout": 1, "ms_add_payment_count": 1, "ms_begin_checkout_count": 0}},
		{name: "only micro, custom and click match by name", evs: []Event{
			{Type: PageView, TS: at(0), Name: "view_product"}, {Type: Error, TS: at(1), Name: "begin_checkout"},
			{Type: Exposure, TS: at(2), Name: "add_to_cart"},
		}, want: map[string]float64{"funnel_phase": 0, "ms_view_product_count": 0, "ms_begin_checkout_count": 0, "ms_add_to_cart_count": 0}},
		{name: "secondary actions do not move the funnel", evs: []Event{
			named(Custom, at(0), "newsletter_signup", 0), named(Click, at(1), "share", 0), named(Click, at(2), "share", 0),
			named(Custom, at(3), "unknown_thing", 0),
		}, want: map[string]float64{
			"sa_newsletter_signup_count": 1, "sa_newsletter_signup_reached": 1, "sa_share_count": 2, "sa_share_reached": 1,
			"funnel_phase": 0, "phase_none": 1,
		}},
		{name: "macro conversion by type", evs: []Event{named(MacroConversion, at(0), "order", 99)},
			want: map[string]float64{"converted_in_session": 1}},
		{name: "macro conversion by name", evs: []Event{named(Custom, at(0), "purchase", 99)},
			want: map[string]float64{"converted_in_session": 1}},
		{name: "no conversion", evs: []Event{named(Custom, at(0), "purchases", 99)},
			want: map[string]float64{"converted_in_session": 0}},
		{name: "exposures and events", evs: []Event{
			{Type: Exposure, TS: at(0), Props: props("intervention", "coupon")}, {Type: Exposure, TS: at(1)}, pv(at(2), "/"),
		}, want: map[string]float64{"exposures": 2, "events": 3}},
	})
}

func TestCart(t *testing.T) {
	runCases(t, shopSpec, []featureCase{
		{name: "adds and removes", evs: []Event{
			named(MicroConversion, at(0), "add_to_cart", 20), named(Click, at(1), "add_to_cart", 30),
			named(MicroConversion, at(2), "remove_from_cart", 20),
		}, want: map[string]float64{"cart_value": 30, "cart_adds": 2}},
		{name: "never below zero", evs: []Event{
			named(MicroConversion, at(0), "add_to_cart", 20), named(MicroConversion, at(1), "remove_from_cart", 100),
		}, want: map[string]float64{"cart_value": 0, "cart_adds": 1}},
		{name: "props cart_value sets, later adds apply on top", evs: []Event{
			named(MicroConversion, at(0), "add_to_cart", 5), pv(at(1), "/cart", "cart_value", "75.5"),
			named(MicroConversion, at(2), "add_to_cart", 10),
		}, want: map[string]float64{"cart_value": 85.5, "cart_adds": 2}},
		{name: "the latest cart_value by time wins", evs: []Event{
			pv(at(200), "/cart", "cart_value", "100"), pv(at(100), "/cart", "cart_value", "40"),
		}, want: map[string]float64{"cart_value": 100}},
		{name: "bad values ignored", evs: []Event{
			named(MicroConversion, at(0), "add_to_cart", math.NaN()), named(MicroConversion, at(1), "add_to_cart", -5),
			named(MicroConversion, at(2), "add_to_cart", math.Inf(1)), pv(at(3), "/", "cart_value", "-3"),
			pv(at(4), "/", "cart_value", "Inf"),
		}, want: map[string]float64{"cart_value": 0, "cart_adds": 3}},
		{name: "page view named add_to_cart is not an add", evs: []Event{{Type: PageView, TS: at(0), Name: "add_to_cart", Value: 9}},
			want: map[string]float64{"cart_value": 0, "cart_adds": 0}},
	})
	custom := shopSpec
	custom.CartAdd = []string{"basket_add"}
	custom.CartRemove = []string{"basket_remove"}
	runCases(t, custom, []featureCase{
		{name: "custom cart names", evs: []Event{
			named(Custom, at(0), "basket_add", 12), named(Custom, at(1), "add_to_cart", 50), named(Custom, at(2), "basket_remove", 2),
		}, want: map[string]float64{"cart_value": 10, "cart_adds": 1, "ms_add_to_cart_count": 1}},
	})
}

func TestHashCategoryGolden(t *testing.T) {
	// Literals computed once with this implementation (FNV-1a 64) and frozen: a change here
	// changes every stored model's inputs and must bump SchemaVersion.
	golden := []struct {
		v      string
		hash   uint64
		b8     uint64
		b16    uint64
		equals []string // spellings that must hash the same
	}{
		{"google", 0xe75b7c725d232686, 6, 6, []string{"Google", " GOOGLE "}},
		{"bing", 0xdec34b9bd0b6d13b, 3, 11, nil},
		{"(direct)", 0x3fbb3e0a5fd795f5, 5, 5, nil},
		{"(none)", 0x8c36545f724b9460, 0, 0, []string{"(NONE)"}},
		{"newsletter", 0xd85912dcbbef65a, 2, 10, nil},
		{"spring_sale", 0x5aeb825eaa075712, 2, 2, []string{"Spring_Sale"}},
		{"products", 0xeea90aa769b1462d, 5, 13, nil},
		{"(root)", 0x139331c8fdf602f6, 6, 6, nil},
		{"t.co", 0xee6daee0427b3e9, 1, 9, nil},
		{"news.example.org", 0x6e6b39b861cc93b6, 6, 6, nil},
		{"cpc", 0xf5a8ec190cb2fcff, 7, 15, nil},
		{"email", 0x123467b419acbc07, 7, 7, nil},
	}
	for _, g := range golden {
		t.Run(g.v, func(t *testing.T) {
			h := HashCategory(g.v)
			if h != g.hash || h%8 != g.b8 || h%16 != g.b16 {
				t.Fatalf("HashCategory(%q) = %#x (b8 %d, b16 %d), want %#x (b8 %d, b16 %d)", g.v, h, h%8, h%16, g.hash, g.b8, g.b16)
			}
			ref := fnv.New64a() // independent implementation
			ref.Write([]byte(strings.ToLower(g.v)))
			if ref.Sum64() != h {
				t.Fatalf("HashCategory(%q) differs from hash/fnv", g.v)
			}
			for _, e := range g.equals {
				if HashCategory(e) != h {
					t.Errorf("HashCategory(%q) != HashCategory(%q)", e, g.v)
				}
			}
		})
	}
}

func TestDeriveTraffic(t *testing.T) {
	cases := []struct {
		name  string
		props map[string]string
		want  Traffic
	}{
		{"nothing is direct", props(), Traffic{"(direct)", "(none)", "(none)", "direct"}},
		{"utm wins over referrer", props("utm_source", "Newsletter", "utm_medium", "email", "utm_campaign", "spring_sale", "referrer", "https://www.google.com/"),
			Traffic{"Newsletter", "email", "spring_sale", "email"}},
		{"utm paid", props("utm_source", "google", "utm_medium", "CPC"), Traffic{"google", "CPC", "(none)", "paid"}},
		{"utm paid prefix", props("utm_source", "meta", "utm_medium", "paid-social"), Traffic{"meta", "paid-social", "(none)", "paid"}},
		{"utm social source without medium", props("utm_source", "facebook"), Traffic{"facebook", "(none)", "(none)", "social"}},
		{"utm unknown medium", props("utm_source", "partner", "utm_medium", "podcast"), Traffic{"partner", "podcast", "(none)", "other"}},
		{"google referrer is organic", props("referrer", "https://www.google.co.uk/search?q=x"), Traffic{"google", "organic", "(none)", "organic"}},
		{"bing referrer", props("referrer", "https://bing.com/search?q=shoes"), Traffic{"bing", "organic", "(none)", "organic"}},
		{"duckduckgo with port and user", props("referrer", "http://u@duckduckgo.com:443/?q=1"), Traffic{"duckduckgo", "organic", "(none)", "organic"}},
		{"t.co is social", props("referrer", "https://t.co/abc"), Traffic{"t.co", "social", "(none)", "social"}},
		{"facebook subdomain is social", props("referrer", "https://m.facebook.com/"), Traffic{"m.facebook.com", "social", "(none)", "social"}},
		{"other host is referral", props("referrer", "https://www.news.example.org/story?id=1"), Traffic{"news.example.org", "referral", "(none)", "referral"}},
		{"not a search label", props("referrer", "https://googlefans.example/"), Traffic{"googlefans.example", "referral", "(none)", "referral"}},
		{"campaign without source", props("utm_campaign", "x", "referrer", ""), Traffic{"(direct)", "(none)", "x", "direct"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeriveTraffic(tc.props); got != tc.want {
				t.Fatalf("DeriveTraffic = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTrafficVector(t *testing.T) {
	s := mustSchema(t, shopSpec) // 8 buckets
	oneHot := func(t *testing.T, m map[string]float64, block string, want uint64) {
		t.Helper()
		for b := range uint64(8) {
			w := 0.0
			if b == want {
				w = 1
			}
			if n := fmt.Sprintf("%s_b%02d", block, b); m[n] != w {
				t.Errorf("%s = %v, want %v", n, m[n], w)
			}
		}
	}
	t.Run("utm landing", func(t *testing.T) {
		m := vectorMap(t, s, VisitorHistory{}, []Event{
			pv(at(0), "/products/42", "utm_source", "newsletter", "utm_medium", "email", "utm_campaign", "spring_sale"),
			pv(at(5), "/cart", "referrer", "https://shop.example/products/42"),
		}, at(5))
		oneHot(t, m, "source", 2)        // "newsletter"
		oneHot(t, m, "medium", 7)        // "email"
		oneHot(t, m, "campaign", 2)      // "spring_sale"
		oneHot(t, m, "landing_group", 5) // "products"
		if m["channel_email"] != 1 || m["channel_referral"] != 0 {
			t.Errorf("channel: %v", m)
		}
	})
	t.Run("earliest event is the landing", func(t *testing.T) {
		m := vectorMap(t, s, VisitorHistory{}, []Event{
			pv(at(200), "/x", "referrer", "https://www.google.com/"),
			pv(at(100), "/", "page_group", "Home"), // arrives late but is earlier: direct
		}, at(200))
		oneHot(t, m, "source", 5) // "(direct)"
		oneHot(t, m, "medium", 0) // "(none)"
		oneHot(t, m, "landing_group", HashCategory("home")%8)
		if m["channel_direct"] != 1 || m["channel_organic"] != 0 {
			t.Errorf("channel: direct %v organic %v", m["channel_direct"], m["channel_organic"])
		}
	})
	t.Run("no landing event is direct", func(t *testing.T) {
		m := vectorMap(t, s, VisitorHistory{}, []Event{named(Custom, at(0), "x", 0)}, at(0))
		oneHot(t, m, "source", 5)
		oneHot(t, m, "landing_group", 0) // "(none)"
		if m["channel_direct"] != 1 {
			t.Error("channel_direct != 1")
		}
	})
	t.Run("organic root landing with 16 buckets", func(t *testing.T) {
		sp := shopSpec
		sp.HashBuckets = 16
		s16 := mustSchema(t, sp)
		m := vectorMap(t, s16, VisitorHistory{}, []Event{pv(at(0), "/", "referrer", "https://www.bing.com/search?q=a")}, at(0))
		if m["source_b11"] != 1 || m["landing_group_b06"] != 1 || m["medium_b06"] != 1 { // bing, (root), organic
			t.Errorf("buckets: source_b11=%v landing_group_b06=%v medium_b06=%v", m["source_b11"], m["landing_group_b06"], m["medium_b06"])
		}
	})
}

func TestDevice(t *testing.T) {
	runCases(t, shopSpec, []featureCase{
		{name: "unknown by default", evs: []Event{pv(at(0), "/")}, want: map[string]float64{
			"device_unknown": 1, "device_mobile": 0, "device_tablet": 0, "device_desktop": 0}},
		{name: "mobile", evs: []Event{pv(at(0), "/", "device", "mobile")}, want: map[string]float64{"device_mobile": 1, "device_unknown": 0}},
		{name: "phone is mobile", evs: []Event{pv(at(0), "/", "device", "Phone")}, want: map[string]float64{"device_mobile": 1}},
		{name: "tablet", evs: []Event{pv(at(0), "/", "device", "TABLET")}, want: map[string]float64{"device_tablet": 1}},
		{name: "desktop", evs: []Event{pv(at(0), "/", "device", "desktop")}, want: map[string]float64{"device_desktop": 1}},
		{name: "unrecognised is unknown", evs: []Event{pv(at(0), "/", "device", "tv")}, want: map[string]float64{"device_unknown": 1}},
		{name: "earliest known wins", evs: []Event{
			pv(at(10), "/", "device", "desktop"), pv(at(5), "/", "device", "tablet"), pv(at(20), "/", "device", "mobile"),
		}, want: map[string]float64{"device_tablet": 1, "device_desktop": 0, "device_mobile": 0}},
	})
}

func TestCalendar(t *testing.T) {
	cyc := func(v, period float64) (float64, float64) {
		return math.Sin(2 * math.Pi * v / period), math.Cos(2 * math.Pi * v / period)
	}
	// base: Monday 2026-11-23 13:30 UTC.
	cases := []struct {
		name string
		tz   string
		ts   int64
		hour float64
		dow  float64
	}{
		{"utc", "", base, 13.5, 1},
		{"new york is five hours behind in november", "America/New_York", base, 8.5, 1},
		{"tokyo", "Asia/Tokyo", base, 22.5, 1},
		{"crosses back to sunday", "America/New_York", time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC).UnixMilli(), 21, 0},
		{"new york in summer is four hours behind", "America/New_York", time.Date(2026, 7, 4, 12, 15, 0, 0, time.UTC).UnixMilli(), 8.25, 6},
		{"kolkata half hour offset", "Asia/Kolkata", time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC).UnixMilli(), 4.5, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := shopSpec
			sp.TimeZone = tc.tz
			s := mustSchema(t, sp)
			// The session starts at ts; a later event must not move the calendar features.
			m := vectorMap(t, s, VisitorHistory{}, []Event{pv(tc.ts, "/"), pv(tc.ts+3*3600*1000, "/x")}, tc.ts+4*3600*1000)
			hs, hc := cyc(tc.hour, 24)
			ds, dc := cyc(tc.dow, 7)
			for n, w := range map[string]float64{"hour_sin": hs, "hour_cos": hc, "dow_sin": ds, "dow_cos": dc} {
				if math.Abs(m[n]-w) > 1e-12 {
					t.Errorf("%s = %v, want %v", n, m[n], w)
				}
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	runCases(t, shopSpec, []featureCase{
		{name: "anonymous", evs: []Event{pv(at(0), "/"), named(Custom, at(1), "x", 0)}, want: map[string]float64{"identified": 0}},
		{name: "user id on any event", evs: []Event{pv(at(0), "/"), {Type: Click, TS: at(1), UserID: "u1"}}, want: map[string]float64{"identified": 1}},
		{name: "identify event", evs: []Event{{Type: Identify, TS: at(0)}}, want: map[string]float64{"identified": 1}},
	})
}

func TestHistory(t *testing.T) {
	day := int64(dayMS)
	runCases(t, shopSpec, []featureCase{
		{name: "new visitor", evs: []Event{pv(at(0), "/")}, want: map[string]float64{
			"sessions_7d": 0, "sessions_30d": 0, "has_prev_visit": 0, "days_since_prev_visit": NoneDays,
			"prior_conversions": 0, "prior_monetary": 0, "has_prior_conversion": 0, "days_since_last_conversion": NoneDays,
		}},
		{name: "returning buyer", hist: VisitorHistory{
			Sessions7d: 2, Sessions30d: 5, LastSessionTS: at(0) - 3*day - day/2,
			Conversions: 2, LastConversionTS: at(0) - 10*day, Monetary: 120.5,
		}, evs: []Event{pv(at(0), "/"), pv(at(3600), "/b")}, want: map[string]float64{
			"sessions_7d": 2, "sessions_30d": 5, "has_prev_visit": 1, "days_since_prev_visit": 3.5,
			"prior_conversions": 2, "prior_monetary": 120.5, "has_prior_conversion": 1, "days_since_last_conversion": 10,
		}},
		{name: "long ago is capped", hist: VisitorHistory{LastSessionTS: at(0) - 800*day, Sessions30d: 0},
			evs: []Event{pv(at(0), "/")}, want: map[string]float64{"has_prev_visit": 1, "days_since_prev_visit": NoneDays}},
		{name: "garbage history is clamped", hist: VisitorHistory{
			Sessions7d: -3, LastSessionTS: at(0) + day, Conversions: -1, Monetary: math.NaN(),
		}, evs: []Event{pv(at(0), "/")}, want: map[string]float64{
			"sessions_7d": 0, "days_since_prev_visit": 0, "prior_conversions": 0, "prior_monetary": 0,
		}},
		{name: "no events measures from asOf", hist: VisitorHistory{LastSessionTS: at(0) - day}, asOf: at(0),
			want: map[string]float64{"days_since_prev_visit": 1}},
	})
}

func TestConsentHasNoEffect(t *testing.T) {
	s := mustSchema(t, shopSpec)
	for seed := range uint64(20) {
		evs := randomEvents(seed, 40, false)
		withConsent := make([]Event, len(evs))
		for i := range evs {
			withConsent[i] = evs[i]
			withConsent[i].Consent = !evs[i].Consent
		}
		a, b := make([]float64, s.Len()), make([]float64, s.Len())
		asOf := evs[len(evs)-1].TS
		if err := s.Replay(VisitorHistory{}, evs, asOf, a); err != nil {
			t.Fatal(err)
		}
		if err := s.Replay(VisitorHistory{}, withConsent, asOf, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("seed %d: %s differs with consent flipped: %v vs %v", seed, s.Names[i], a[i], b[i])
			}
		}
	}
}

var snakeRE = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

func TestSchemaNames(t *testing.T) {
	s := mustSchema(t, shopSpec)
	if s.Version != SchemaVersion {
		t.Fatalf("Version = %d", s.Version)
	}
	if len(s.Kinds) != s.Len() {
		t.Fatalf("%d kinds for %d names", len(s.Kinds), s.Len())
	}
	// 28 fixed + (1+3) phases + 2*(4+2) actions + 4 devices + 7 channels + 4*8 buckets + 4 calendar
	if want := 28 + 4 + 12 + 4 + 7 + 32 + 4; s.Len() != want {
		t.Fatalf("Len = %d, want %d", s.Len(), want)
	}
	for i, n := range s.Names {
		if !snakeRE.MatchString(n) {
			t.Errorf("name %q is not snake_case", n)
		}
		if j, ok := s.Index(n); !ok || j != i {
			t.Errorf("Index(%q) = %d, %v; want %d", n, j, ok, i)
		}
		if s.Kinds[i] < KindCount || s.Kinds[i] > KindCyclic {
			t.Errorf("%s has kind %v", n, s.Kinds[i])
		}
	}
	if _, ok := s.Index("nope"); ok {
		t.Error("Index(nope) found")
	}
	if got := snake(" Add To-Cart! 2 "); got != "add_to_cart_2" {
		t.Errorf("snake = %q", got)
	}
}

func TestNewSchemaErrors(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
	}{
		{"negative buckets", Spec{HashBuckets: -1}},
		{"too many buckets", Spec{HashBuckets: MaxHashBuckets + 1}},
		{"unknown time zone", Spec{TimeZone: "Mars/Olympus"}},
		{"empty milestone", Spec{Phases: []Phase{{Name: "a", Milestones: []string{" "}}}}},
		{"unnamed phase", Spec{Phases: []Phase{{Name: "!!", Milestones: []string{"x"}}}}},
		{"milestone twice", Spec{Phases: []Phase{{Name: "a", Milestones: []string{"x"}}, {Name: "b", Milestones: []string{"x"}}}}},
		{"milestone and secondary", Spec{Phases: []Phase{{Name: "a", Milestones: []string{"x"}}}, SecondaryActions: []string{"x"}}},
		{"names collide when snake_cased", Spec{SecondaryActions: []string{"Add To Cart", "add_to_cart"}}},
		{"phase names collide", Spec{Phases: []Phase{{Name: "Cart", Milestones: []string{"x"}}, {Name: "cart", Milestones: []string{"y"}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSchema(tc.spec); !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err = %v, want ErrInvalidSpec", err)
			}
		})
	}
	if _, err := NewSchema(Spec{}); err != nil {
		t.Fatalf("empty spec: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	fp := func(sp Spec) string { return mustSchema(t, sp).Fingerprint }
	ref := fp(shopSpec)
	if len(ref) != 32 {
		t.Fatalf("fingerprint %q", ref)
	}
	same := []struct {
		name string
		spec Spec
	}{
		{"identical", shopSpec},
		{"default buckets spelled out", func() Spec { s := shopSpec; s.HashBuckets = DefaultHashBuckets; return s }()},
		{"UTC spelled out", func() Spec { s := shopSpec; s.TimeZone = "UTC"; return s }()},
		{"default cart names spelled out", func() Spec {
			s := shopSpec
			s.CartAdd, s.CartRemove = []string{"add_to_cart"}, []string{"remove_from_cart"}
			return s
		}()},
	}
	for _, tc := range same {
		if got := fp(tc.spec); got != ref {
			t.Errorf("%s: fingerprint changed", tc.name)
		}
	}
	mod := func(f func(*Spec)) Spec {
		s := shopSpec
		s.Phases = append([]Phase(nil), shopSpec.Phases...)
		s.SecondaryActions = append([]string(nil), shopSpec.SecondaryActions...)
		f(&s)
		return s
	}
	differ := []struct {
		name string
		spec Spec
	}{
		{"buckets", mod(func(s *Spec) { s.HashBuckets = 16 })},
		{"time zone", mod(func(s *Spec) { s.TimeZone = "Europe/Paris" })},
		{"macro conversion", mod(func(s *Spec) { s.MacroConversion = "order" })},
		{"secondary action added", mod(func(s *Spec) { s.SecondaryActions = append(s.SecondaryActions, "download") })},
		{"milestone renamed, same snake name", mod(func(s *Spec) { s.Phases[0] = Phase{Name: "Browse", Milestones: []string{"View Product"}} })},
		{"phase order", mod(func(s *Spec) { s.Phases[0], s.Phases[1] = s.Phases[1], s.Phases[0] })},
		{"cart names", mod(func(s *Spec) { s.CartAdd = []string{"basket_add"} })},
	}
	seen := map[string]string{ref: "reference"}
	for _, tc := range differ {
		got := fp(tc.spec)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: fingerprint equals %s's", tc.name, prev)
		}
		seen[got] = tc.name
	}
}

func TestVectorRejectsForeignState(t *testing.T) {
	a := mustSchema(t, shopSpec)
	sp := shopSpec
	sp.HashBuckets = 16
	b := mustSchema(t, sp)
	st := a.NewState(VisitorHistory{})
	if !a.Compatible(&st) || b.Compatible(&st) {
		t.Fatal("Compatible")
	}
	if err := b.Vector(&st, 0, make([]float64, b.Len())); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("foreign state: err = %v", err)
	}
	if err := a.Vector(&st, 0, make([]float64, a.Len()-1)); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("short vector: err = %v", err)
	}
	var zero State
	if err := a.Vector(&zero, 0, make([]float64, a.Len())); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("zero state: err = %v", err)
	}
	a.Fold(&zero, &Event{Type: Click, TS: 1, Name: "add_to_cart"}) // must not panic
	if err := a.Replay(VisitorHistory{}, nil, 0, make([]float64, 3)); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("Replay short vector: err = %v", err)
	}
}

func TestSpecIsCopied(t *testing.T) {
	sp := Spec{Phases: []Phase{{Name: "a", Milestones: []string{"x"}}}, SecondaryActions: []string{"y"}}
	s := mustSchema(t, sp)
	fp := s.Fingerprint
	sp.Phases[0].Milestones[0] = "z"
	sp.SecondaryActions[0] = "w"
	got := s.Spec()
	if got.Phases[0].Milestones[0] != "x" || got.SecondaryActions[0] != "y" || got.HashBuckets != DefaultHashBuckets {
		t.Fatalf("schema spec changed with the caller's: %+v", got)
	}
	got.Phases[0].Milestones[0] = "q"
	if s.Spec().Phases[0].Milestones[0] != "x" || s.Fingerprint != fp {
		t.Fatal("Spec() returned shared memory")
	}
	if s.HashBuckets() != DefaultHashBuckets {
		t.Fatal("HashBuckets")
	}
}

// TestFingerprintGolden pins the fingerprint of shopSpec. If this fails, the feature code or
// names changed: bump SchemaVersion (stored models and states of the old schema must be
// refused, not misread) and update the literal.
func TestFingerprintGolden(t *testing.T) {
	golden := map[int]string{
		1: "43abf8c9ef9fc31042af67a0b378a95e",
	}
	got := mustSchema(t, shopSpec).Fingerprint
	want, ok := golden[SchemaVersion]
	if !ok {
		t.Fatalf("no golden fingerprint for SchemaVersion %d: add %d: %q", SchemaVersion, SchemaVersion, got)
	}
	if got != want {
		t.Fatalf("Fingerprint = %s, want %s: the features changed, bump SchemaVersion and add its golden value", got, want)
	}
}
