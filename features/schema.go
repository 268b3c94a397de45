package features

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // Spec.TimeZone must resolve the same way on every host, even without zoneinfo
)

// SchemaVersion is the version of the feature code: bump it on any change to the names, their
// order or the way a value is computed. It is part of every Fingerprint.
const SchemaVersion = 1

// DefaultHashBuckets is the number of buckets per hashed categorical when Spec.HashBuckets is 0.
const DefaultHashBuckets = 8

// MaxHashBuckets bounds Spec.HashBuckets.
const MaxHashBuckets = 256

// Defaults of the cart events (see Spec.CartAdd, Spec.CartRemove).
const (
	DefaultCartAdd    = "add_to_cart"
	DefaultCartRemove = "remove_from_cart"
)

// Phase is one step of the journey towards the macro conversion, with its process milestones
// (event names of micro conversions or custom events that move a visitor on).
type Phase struct {
	Name       string
	Milestones []string
}

// Spec is what a site declares that its features depend on.
type Spec struct {
	MacroConversion  string   // event name of the macro conversion, e.g. "purchase"
	Phases           []Phase  // ordered
	SecondaryActions []string // event names that signal interest without being steps
	HashBuckets      int      // buckets per hashed categorical; 0 means the default
	TimeZone         string   // IANA name for hour-of-day / day-of-week; "" means UTC

	// CartAdd and CartRemove are the event names whose Value is added to (removed from) the
	// running cart value; nil means {"add_to_cart"} and {"remove_from_cart"}.
	CartAdd    []string
	CartRemove []string
}

// VisitorHistory is what is known of a visitor (all linked anonymous ids) strictly before a
// session starts. The store computes it at the session's first event, and replay computes it
// the same way from the log, so live and replayed vectors agree.
type VisitorHistory struct {
	Sessions7d       int     // earlier sessions started within 7 days before this one
	Sessions30d      int     // ... within 30 days
	LastSessionTS    int64   // start of the previous session (Unix ms), 0 if none
	Conversions      int     // earlier macro conversions
	LastConversionTS int64   // Unix ms, 0 if none
	Monetary         float64 // sum of earlier macro conversion values
}

// Errors of this package.
var (
	// ErrSchemaMismatch is returned when a vector or state does not fit a schema.
	ErrSchemaMismatch = errors.New("features: schema mismatch")
	// ErrInvalidSpec is returned by NewSchema for a spec it cannot build a schema from.
	ErrInvalidSpec = errors.New("features: invalid spec")
	// ErrBadState is returned when an encoded state is truncated or corrupt.
	ErrBadState = errors.New("features: bad state encoding")
)

// Kind says how a feature's value should be read.
type Kind uint8

// Feature kinds.
const (
	KindCount      Kind = iota + 1 // a non-negative count
	KindContinuous                 // a non-negative real (seconds, days, money, percent)
	KindBinary                     // 0 or 1 (flags and one-hot members)
	KindCyclic                     // sin or cos of a cyclic quantity, in [-1, 1]
)

var kindNames = [...]string{0: "invalid", KindCount: "count", KindContinuous: "continuous", KindBinary: "binary", KindCyclic: "cyclic"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Schema is the versioned, ordered list of features for one site's Spec. It is immutable once
// built and safe to share across goroutines.
type Schema struct {
	Version     int
	Names       []string
	Fingerprint string
	Kinds       []Kind // Kinds[i] is the kind of Names[i]

	spec    Spec
	loc     *time.Location
	buckets int
	fp      uint64 // first 8 bytes of the fingerprint; stamped into every State

	index      map[string]int // feature name -> position
	actions    map[string]int // milestone or secondary action event name -> action slot
	nMilestone int            // action slots [0, nMilestone) are milestones, the rest secondary
	nActions   int
	phaseOf    []int // action slot -> phase index (milestones only)
	cartAdd    map[string]struct{}
	cartRemove map[string]struct{}
}

// NewSchema builds the schema of a site's spec. Event names must be non-empty and a name may be
// a milestone of one phase or a secondary action, not both.
func NewSchema(spec Spec) (*Schema, error) {
	s := &Schema{Version: SchemaVersion, actions: map[string]int{}, index: map[string]int{}}
	if spec.HashBuckets < 0 || spec.HashBuckets > MaxHashBuckets {
		return nil, fmt.Errorf("%w: hash buckets %d not in [0, %d]", ErrInvalidSpec, spec.HashBuckets, MaxHashBuckets)
	}
	s.buckets = spec.HashBuckets
	if s.buckets == 0 {
		s.buckets = DefaultHashBuckets
	}
	loc, err := time.LoadLocation(spec.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q: %w", ErrInvalidSpec, spec.TimeZone, err)
	}
	s.loc = loc

	// Normalised private copy of the spec.
	spec.HashBuckets = s.buckets
	spec.Phases = append([]Phase(nil), spec.Phases...)
	for i := range spec.Phases {
		spec.Phases[i].Milestones = append([]string(nil), spec.Phases[i].Milestones...)
	}
	spec.SecondaryActions = append([]string(nil), spec.SecondaryActions...)
	if spec.CartAdd == nil {
		spec.CartAdd = []string{DefaultCartAdd}
	}
	if spec.CartRemove == nil {
		spec.CartRemove = []string{DefaultCartRemove}
	}
	spec.CartAdd = append([]string(nil), spec.CartAdd...)
	spec.CartRemove = append([]string(nil), spec.CartRemove...)
	s.spec = spec

	addAction := func(name string, phase int) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("%w: empty event name", ErrInvalidSpec)
		}
		if _, dup := s.actions[name]; dup {
			return fmt.Errorf("%w: event name %q declared twice", ErrInvalidSpec, name)
		}
		s.actions[name] = s.nActions
		s.phaseOf = append(s.phaseOf, phase)
		s.nActions++
		return nil
	}
	for pi, p := range spec.Phases {
		if snake(p.Name) == "" {
			return nil, fmt.Errorf("%w: phase %d has no usable name", ErrInvalidSpec, pi)
		}
		for _, m := range p.Milestones {
			if err := addAction(m, pi); err != nil {
				return nil, err
			}
		}
	}
	s.nMilestone = s.nActions
	for _, a := range spec.SecondaryActions {
		if err := addAction(a, -1); err != nil {
			return nil, err
		}
	}
	s.cartAdd = nameSet(spec.CartAdd)
	s.cartRemove = nameSet(spec.CartRemove)

	s.buildNames()
	for i, n := range s.Names {
		if _, dup := s.index[n]; dup {
			return nil, fmt.Errorf("%w: feature name %q twice (names collide once made snake_case)", ErrInvalidSpec, n)
		}
		s.index[n] = i
	}
	sum := s.fingerprint()
	s.Fingerprint = hex.EncodeToString(sum[:16])
	s.fp = binary.LittleEndian.Uint64(sum[:8])
	return s, nil
}

func nameSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

// Fixed features, in vector order. The spec-dependent blocks follow (see buildNames).
var fixedFeatures = []struct {
	name string
	kind Kind
}{
	{"events", KindCount},
	{"time_on_site_s", KindContinuous},
	{"time_since_start_s", KindContinuous},
	{"time_since_last_event_s", KindContinuous},
	{"active_time_s", KindContinuous},
	{"engaged_time_s", KindContinuous},
	{"max_scroll_pct", KindContinuous},
	{"page_views", KindCount},
	{"unique_pages", KindCount},
	{"clicks", KindCount},
	{"errors", KindCount},
	{"errors_client", KindCount},
	{"errors_form", KindCount},
	{"error_rate_per_page", KindContinuous},
	{"sessions_7d", KindCount},
	{"sessions_30d", KindCount},
	{"has_prev_visit", KindBinary},
	{"days_since_prev_visit", KindContinuous},
	{"prior_conversions", KindCount},
	{"prior_monetary", KindContinuous},
	{"has_prior_conversion", KindBinary},
	{"days_since_last_conversion", KindContinuous},
	{"converted_in_session", KindBinary},
	{"exposures", KindCount},
	{"identified", KindBinary},
	{"cart_value", KindContinuous},
	{"cart_adds", KindCount},
	{"funnel_phase", KindCount},
}

var deviceNames = [...]string{deviceUnknown: "device_unknown", deviceMobile: "device_mobile", deviceTablet: "device_tablet", deviceDesktop: "device_desktop"}

var channelNames = [...]string{
	chDirect: "channel_direct", chOrganic: "channel_organic", chPaid: "channel_paid",
	chSocial: "channel_social", chEmail: "channel_email", chReferral: "channel_referral", chOther: "channel_other",
}

// hashedBlocks are the hashed categoricals, in vector order.
var hashedBlocks = [...]string{"source", "medium", "campaign", "landing_group"}

func (s *Schema) buildNames() {
	add := func(n string, k Kind) {
		s.Names = append(s.Names, n)
		s.Kinds = append(s.Kinds, k)
	}
	for _, f := range fixedFeatures {
		add(f.name, f.kind)
	}
	add("phase_none", KindBinary)
	for _, p := range s.spec.Phases {
		add("phase_"+snake(p.Name), KindBinary)
	}
	for _, p := range s.spec.Phases {
		for _, m := range p.Milestones {
			add("ms_"+snake(m)+"_count", KindCount)
			add("ms_"+snake(m)+"_reached", KindBinary)
		}
	}
	for _, a := range s.spec.SecondaryActions {
		add("sa_"+snake(a)+"_count", KindCount)
		add("sa_"+snake(a)+"_reached", KindBinary)
	}
	for _, n := range deviceNames {
		add(n, KindBinary)
	}
	for _, n := range channelNames {
		add(n, KindBinary)
	}
	for _, blk := range hashedBlocks {
		for b := range s.buckets {
			add(fmt.Sprintf("%s_b%02d", blk, b), KindBinary)
		}
	}
	add("hour_sin", KindCyclic)
	add("hour_cos", KindCyclic)
	add("dow_sin", KindCyclic)
	add("dow_cos", KindCyclic)
}

// fingerprint hashes everything that shapes the vector: the version, the names and the spec
// parts whose values change what a name means (event names matched, cart names, macro
// conversion, time zone, bucket count).
func (s *Schema) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	var b []byte
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	list := func(tag string, vs []string) {
		str(tag)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	str("nudge-features")
	b = binary.AppendUvarint(b, SchemaVersion)
	list("names", s.Names)
	str("macro")
	str(s.spec.MacroConversion)
	str("phases")
	for _, p := range s.spec.Phases {
		list(p.Name, p.Milestones)
	}
	list("secondary", s.spec.SecondaryActions)
	list("cart_add", s.spec.CartAdd)
	list("cart_remove", s.spec.CartRemove)
	str("tz")
	str(s.loc.String())
	b = binary.AppendUvarint(b, uint64(s.buckets))
	h.Write(b)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// Len is the number of features.
func (s *Schema) Len() int { return len(s.Names) }

// Index returns the position of the named feature.
func (s *Schema) Index(name string) (int, bool) {
	i, ok := s.index[name]
	return i, ok
}

// Spec returns the normalised spec the schema was built from (defaults filled in).
func (s *Schema) Spec() Spec {
	sp := s.spec
	sp.Phases = append([]Phase(nil), sp.Phases...)
	for i := range sp.Phases {
		sp.Phases[i].Milestones = append([]string(nil), sp.Phases[i].Milestones...)
	}
	sp.SecondaryActions = append([]string(nil), sp.SecondaryActions...)
	sp.CartAdd = append([]string(nil), sp.CartAdd...)
	sp.CartRemove = append([]string(nil), sp.CartRemove...)
	return sp
}

// HashBuckets is the number of buckets per hashed categorical.
func (s *Schema) HashBuckets() int { return s.buckets }

// Replay builds the vector of a session as of asOfTS from its events and the visitor's history
// at session start, using the same fold as live ingest. Events after asOfTS are skipped (the
// slice need not be sorted, but folding in time order is what live ingest does).
func (s *Schema) Replay(hist VisitorHistory, events []Event, asOfTS int64, out []float64) error {
	if len(out) != s.Len() {
		return fmt.Errorf("%w: vector has %d elements, schema %d", ErrSchemaMismatch, len(out), s.Len())
	}
	st := s.NewState(hist)
	for i := range events {
		if events[i].TS > asOfTS {
			continue
		}
		s.Fold(&st, &events[i])
	}
	return s.Vector(&st, asOfTS, out)
}

// snake makes an identifier snake_case: ASCII letters lowered, digits kept, every other run of
// bytes becomes one underscore, no leading or trailing underscore.
func snake(v string) string {
	var b strings.Builder
	pending := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte('_')
			pending = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// finite reports whether v is neither NaN nor infinite.
// (x - x is 0 for every finite x and NaN otherwise.)
func finite(v float64) bool { return v-v == 0 }
