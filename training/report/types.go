package report

import (
	"time"
)

// This file is the contract between the report engine (this package), the dashboard
// (serve/dashboard), the admin API and `nudge report`. Field names are part of the JSON and
// CSV formats: add fields freely, rename none without bumping FormatVersion.

// FormatVersion is written into every JSON report and as the first comment line of every
// CSV section ("# nudge report v1 section=funnel ...").
const FormatVersion = 1

// Query selects what a report covers. It must stay JSON-marshalable (no func or channel
// fields): serve keys its report cache on its JSON.
type Query struct {
	Site string
	// From and To bound session start times, half-open [From, To). Zero values mean the
	// site's first and last event; both are clamped to the data.
	From, To time.Time
	// Group is the bucket of the time series: "hour", "day" or "week"; empty picks one from
	// the range length (<= 2 days: hour, <= 90 days: day, else week).
	Group string
	// Threshold and Budget, when set, override the policy's expected-value threshold and
	// budget share for the "current policy" point of the impact section.
	Threshold *float64
	Budget    *float64
	// AttributionWindow is the look-back from a conversion to the touches that get credit;
	// 0 means 30 days.
	AttributionWindow time.Duration
	// HalfLife is the time-decay model's half-life; 0 means 7 days.
	HalfLife time.Duration
	// Outcome defines a decision's outcome for the lift section: "visitor" (default) is the
	// training pipeline's label, a macro conversion by the decision's visitor (anonymous id)
	// within Window after the decision; "session" is a macro conversion later in the
	// decision's own session.
	Outcome string
	// Window is the outcome window of Outcome "visitor"; 0 means the training pipeline's
	// label window (pipeline.DefaultWindow, 24h).
	Window time.Duration
}

// Report is everything the dashboard shows, in one value.
type Report struct {
	Version   int       `json:"version"`
	Site      string    `json:"site"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	TimeZone  string    `json:"time_zone"`
	Group     string    `json:"group"`
	Generated time.Time `json:"generated"`
	// Value is the macro conversion's configured value (per conversion).
	MacroName string  `json:"macro_name"`
	Value     float64 `json:"value"`

	Overview    Overview      `json:"overview"`
	Series      []SeriesPoint `json:"series"`
	Funnel      []FunnelStep  `json:"funnel"`
	Micro       []MicroRate   `json:"micro"`
	Lift        []Lift        `json:"lift"`
	Impact      Impact        `json:"impact"`
	Attribution []Attribution `json:"attribution"`
	// Notes are caveats a reader must see (few holdout sessions, no promoted model, ...).
	Notes []string `json:"notes"`
}

// Metric is a figure with the same figure for the previous period of equal length.
type Metric struct {
	Value    float64 `json:"value"`
	Previous float64 `json:"previous"`
	// Change is (Value-Previous)/Previous; NaN-free: 0 when Previous is 0.
	Change float64 `json:"change"`
}

// Overview holds the interaction metrics.
type Overview struct {
	Sessions    Metric `json:"sessions"`
	Visitors    Metric `json:"visitors"`
	Conversions Metric `json:"conversions"`
	Revenue     Metric `json:"revenue"`
	// ConversionRate is converting sessions / sessions.
	ConversionRate Metric `json:"conversion_rate"`
	// EngagementRate is the share of sessions with more than one page view or any
	// micro conversion.
	EngagementRate Metric `json:"engagement_rate"`
	// ReturnVisitRate is the share of visitors with more than one session in the range.
	ReturnVisitRate Metric `json:"return_visit_rate"`
	// InterventionCTR is clicks on shown interventions / exposures.
	InterventionCTR Metric `json:"intervention_ctr"`
	// CLV is an estimate of a visitor's value: revenue per converting visitor x expected
	// purchases per visitor (see the package doc for the exact formula).
	CLV Metric `json:"clv"`
	// Decisions and Exposures count logged decisions and exposures in the range.
	Decisions Metric `json:"decisions"`
	Exposures Metric `json:"exposures"`
}

// SeriesPoint is one bucket of the time series (bucket start in the site's time zone).
type SeriesPoint struct {
	Start       time.Time `json:"start"`
	Sessions    int64     `json:"sessions"`
	Conversions int64     `json:"conversions"`
	Revenue     float64   `json:"revenue"`
	Decisions   int64     `json:"decisions"`
	Treated     int64     `json:"treated"`
}

// FunnelStep is one phase of the site's configuration, in order.
type FunnelStep struct {
	Phase string `json:"phase"`
	// Kind is "phase" for the site's phases and "macro" for the last step, the sessions with
	// a macro conversion (Phase is then the macro conversion's name).
	Kind string `json:"kind"`
	// Sessions that reached this phase (any of its milestones, or the phase's entry).
	Sessions int64 `json:"sessions"`
	// OfFirst is Sessions / sessions of the first step; FromPrevious is Sessions /
	// sessions of the previous step; DropOff is 1 - FromPrevious.
	OfFirst      float64 `json:"of_first"`
	FromPrevious float64 `json:"from_previous"`
	DropOff      float64 `json:"drop_off"`
}

// MicroRate is one process milestone or secondary action.
type MicroRate struct {
	Name string `json:"name"`
	// Kind is "milestone" or "secondary".
	Kind  string `json:"kind"`
	Phase string `json:"phase,omitempty"`
	// Sessions with the action; Rate = Sessions / all sessions.
	Sessions int64   `json:"sessions"`
	Rate     float64 `json:"rate"`
	// ConversionWith and ConversionWithout are the macro conversion rates of sessions with
	// and without the action.
	ConversionWith    float64 `json:"conversion_with"`
	ConversionWithout float64 `json:"conversion_without"`
}

// Interval is a two-sided confidence interval.
type Interval struct {
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	Level float64 `json:"level"` // 0.95
}

// Lift is the measured effect of one arm against the randomized holdout. Arm "policy" is
// the whole policy (treatment group against holdout group); other arms are interventions,
// estimated with the logged assignment probabilities (see the package doc).
type Lift struct {
	Arm string `json:"arm"`
	// Method is "newcombe_hybrid_score" (arm "policy": sessions, treatment against holdout)
	// or "hajek_ipw" (an intervention: logged decisions, inverse propensity weighted, where
	// Holdout* are the comparable decisions that showed no intervention).
	Method           string  `json:"method"`
	Sessions         int64   `json:"sessions"`
	Conversions      int64   `json:"conversions"`
	Rate             float64 `json:"rate"`
	HoldoutSessions  int64   `json:"holdout_sessions"`
	HoldoutConverted int64   `json:"holdout_conversions"`
	HoldoutRate      float64 `json:"holdout_rate"`
	// Lift is the absolute difference in conversion rate, with its interval; Relative is
	// Lift / HoldoutRate.
	Lift     float64  `json:"lift"`
	CI       Interval `json:"ci"`
	Relative float64  `json:"relative"`
	PValue   float64  `json:"p_value"`
	// Incremental conversions and revenue over the arm's sessions, its cost and ROI
	// ((incremental revenue - cost) / cost; 0 when cost is 0).
	Incremental        float64  `json:"incremental_conversions"`
	IncrementalCI      Interval `json:"incremental_ci"`
	IncrementalRevenue float64  `json:"incremental_revenue"`
	Cost               float64  `json:"cost"`
	ROI                float64  `json:"roi"`
}

// Impact is the predicted impact of the current policy on the decisions logged in the
// range, scored by the model versions logged with them, and how it moves with the
// threshold and the budget.
type Impact struct {
	ModelVersion string        `json:"model_version"`
	Current      ImpactPoint   `json:"current"`
	ByThreshold  []ImpactPoint `json:"by_threshold"`
	ByBudget     []ImpactPoint `json:"by_budget"`
}

// ImpactPoint is the predicted outcome of the policy at one threshold and budget.
type ImpactPoint struct {
	Threshold float64 `json:"threshold"`
	// Budget is the share of eligible sessions that may be treated (1 = no limit).
	Budget                 float64 `json:"budget"`
	Treated                int64   `json:"treated"`
	TreatedShare           float64 `json:"treated_share"`
	IncrementalConversions float64 `json:"incremental_conversions"`
	IncrementalRevenue     float64 `json:"incremental_revenue"`
	Cost                   float64 `json:"cost"`
	ROI                    float64 `json:"roi"`
}

// Attribution is the credit one model gives each touch (a channel or an intervention).
type Attribution struct {
	// Model is "first_touch", "last_touch", "linear", "time_decay" or "position_based".
	Model string   `json:"model"`
	Rows  []Credit `json:"rows"`
}

// Credit is a touch's share of the conversions and revenue under one model.
type Credit struct {
	// Kind is "channel" (source/medium of a session) or "intervention" (an exposure).
	Kind        string  `json:"kind"`
	Touch       string  `json:"touch"`
	Conversions float64 `json:"conversions"`
	Revenue     float64 `json:"revenue"`
	Share       float64 `json:"share"`
}

// Sections names the CSV sections, in order; WriteCSV accepts each of them.
var Sections = []string{"overview", "series", "funnel", "micro", "lift", "impact", "attribution"}
