package sim

// The demo shop (must match data/config.Demo: macro "purchase" worth 60, phases browse
// [view_product], cart [add_to_cart], checkout [begin_checkout], the secondary actions and the
// three interventions with their costs and eligibility).

// Macro is the demo shop's macro conversion and ConversionValue its value.
const (
	Macro           = "purchase"
	ConversionValue = 60.0
)

// Milestones of the demo shop's phases.
const (
	MilestoneViewProduct   = "view_product"
	MilestoneAddToCart     = "add_to_cart"
	MilestoneBeginCheckout = "begin_checkout"
)

// SecondaryActions of the demo shop.
var secondaryActions = [...]string{"newsletter_signup", "share", "download", "watch_video"}

// Intervention is one thing the demo shop can show.
type Intervention struct {
	Name string
	Cost float64
	// Eligibility: in one of these phases (nil = any) and after at least MinPageViews views.
	Phases       []string
	MinPageViews int
}

var demoInterventions = []Intervention{
	{Name: "discount10", Cost: 3, Phases: []string{"cart", "checkout"}},
	{Name: "chat_offer", Cost: 1, MinPageViews: 3},
	{Name: "help_tip", Cost: 0.1},
}

// Interventions returns the demo shop's interventions (a copy). Arm k >= 1 in Truth,
// DecisionRecord and the helper functions means Interventions()[k-1]; arm 0 is "none".
func Interventions() []Intervention {
	out := make([]Intervention, len(demoInterventions))
	copy(out, demoInterventions)
	return out
}

// ArmIndex returns the arm of an intervention name ("" is arm 0), or -1 when unknown.
func ArmIndex(name string) int {
	if name == "" {
		return 0
	}
	for i, iv := range demoInterventions {
		if iv.Name == name {
			return i + 1
		}
	}
	return -1
}

func (iv *Intervention) eligible(phase string, pageViews int) bool {
	if pageViews < iv.MinPageViews {
		return false
	}
	if iv.Phases == nil {
		return true
	}
	for _, p := range iv.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// Segment names.
const (
	PersuadablePrice    = "persuadable_price"
	PersuadableConfused = "persuadable_confused"
	SureThing           = "sure_thing"
	LostCause           = "lost_cause"
	SleepingDog         = "sleeping_dog"
)

// Segments lists the segment names in a fixed order.
func Segments() []string {
	return []string{PersuadablePrice, PersuadableConfused, SureThing, LostCause, SleepingDog}
}

// DefaultShares are the segment shares used when Config.Shares is nil.
func DefaultShares() map[string]float64 {
	return map[string]float64{
		PersuadablePrice:    0.15,
		PersuadableConfused: 0.12,
		SureThing:           0.15,
		LostCause:           0.38,
		SleepingDog:         0.20,
	}
}

type source struct {
	utmSource, utmMedium, utmCampaign, referrer string
	w                                           float64
}

// segmentSpec is the generative model of one segment.
type segmentSpec struct {
	name      string
	base      float64    // control conversion probability (before stage and visitor factors)
	effect    [3]float64 // additive effect of each intervention on the conversion probability
	device    [3]float64 // weights of mobile, tablet, desktop
	sources   []source
	gapSec    float64 // mean seconds between events (page-view pace)
	errRate   float64 // probability an event is an error
	advance   float64 // probability a page view moves deeper into the funnel
	secondary float64 // probability an event is a secondary action
	secPick   [4]float64
	clickRate float64
	sessions  float64 // mean extra sessions per visitor (Poisson)
	identify  float64 // probability the visitor identifies at some point
}

var devices = [3]string{"mobile", "tablet", "desktop"}

var (
	srcDirect  = source{referrer: "", w: 1}
	srcEmail   = source{utmSource: "newsletter", utmMedium: "email", utmCampaign: "weekly", w: 1}
	srcOrganic = source{referrer: "https://www.google.com/", w: 1}
	srcCPC     = source{utmSource: "google", utmMedium: "cpc", utmCampaign: "brand", referrer: "https://www.google.com/", w: 1}
	srcCompare = source{utmSource: "pricecompare", utmMedium: "referral", utmCampaign: "deals", referrer: "https://pricecompare.example/", w: 1}
	srcSocial  = source{utmSource: "facebook", utmMedium: "social", utmCampaign: "spring", referrer: "https://facebook.com/", w: 1}
	srcTikTok  = source{utmSource: "tiktok", utmMedium: "social", utmCampaign: "viral", referrer: "https://tiktok.com/", w: 1}
)

func weighted(s source, w float64) source { s.w = w; return s }

var segmentSpecs = map[string]*segmentSpec{
	PersuadablePrice: {
		name: PersuadablePrice, base: 0.10, effect: [3]float64{0.32, 0.05, 0.02},
		device:  [3]float64{0.65, 0.15, 0.20},
		sources: []source{weighted(srcCompare, 0.6), weighted(srcCPC, 0.25), weighted(srcEmail, 0.05), weighted(srcDirect, 0.1)},
		gapSec:  18, errRate: 0.02, advance: 0.75, secondary: 0.03, secPick: [4]float64{0.5, 0.3, 0.1, 0.1},
		clickRate: 0.15, sessions: 1.5, identify: 0.3,
	},
	PersuadableConfused: {
		name: PersuadableConfused, base: 0.07, effect: [3]float64{0.04, 0.28, 0.07},
		device:  [3]float64{0.15, 0.15, 0.70},
		sources: []source{weighted(srcOrganic, 0.45), weighted(srcSocial, 0.25), weighted(srcDirect, 0.3)},
		gapSec:  90, errRate: 0.3, advance: 0.45, secondary: 0.05, secPick: [4]float64{0.2, 0.1, 0.3, 0.4},
		clickRate: 0.25, sessions: 1.2, identify: 0.2,
	},
	SureThing: {
		name: SureThing, base: 0.72, effect: [3]float64{0.01, 0, 0},
		device:  [3]float64{0.35, 0.10, 0.55},
		sources: []source{weighted(srcDirect, 0.5), weighted(srcEmail, 0.4), weighted(srcCPC, 0.1)},
		gapSec:  10, errRate: 0.02, advance: 0.8, secondary: 0.04, secPick: [4]float64{0.6, 0.2, 0.1, 0.1},
		clickRate: 0.15, sessions: 3, identify: 0.8,
	},
	LostCause: {
		name: LostCause, base: 0.01, effect: [3]float64{0, 0, 0},
		device:  [3]float64{0.80, 0.10, 0.10},
		sources: []source{weighted(srcSocial, 0.45), weighted(srcTikTok, 0.35), weighted(srcOrganic, 0.2)},
		gapSec:  7, errRate: 0.03, advance: 0.25, secondary: 0.06, secPick: [4]float64{0.05, 0.7, 0.05, 0.2},
		clickRate: 0.3, sessions: 0.3, identify: 0.05,
	},
	SleepingDog: {
		name: SleepingDog, base: 0.32, effect: [3]float64{-0.08, -0.18, -0.07},
		device:  [3]float64{0.15, 0.15, 0.70},
		sources: []source{weighted(srcOrganic, 0.55), weighted(srcDirect, 0.3), weighted(srcEmail, 0.15)},
		gapSec:  40, errRate: 0.005, advance: 0.55, secondary: 0.22, secPick: [4]float64{0.05, 0.05, 0.45, 0.45},
		clickRate: 0.2, sessions: 1.0, identify: 0.3,
	},
}
