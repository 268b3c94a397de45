// Package features owns the event and feature-vector types, the versioned feature schema and
// the pure extraction code: folding one event into a session's state and turning that state
// into a vector. The same fold runs at ingest (live) and at replay (training), so there is one
// feature code path and no train/serve skew.
//
// It imports nothing of ours and no storage, HTTP or learning library (standard library only).
//
// # Use
//
// A site's Spec (macro conversion, phases with their process milestones, secondary actions,
// hash bucket count, time zone) gives a Schema with NewSchema. Schema.NewState starts a
// session's State from the visitor's history before the session, Schema.Fold folds one event
// into it (a few hundred nanoseconds, no allocation), Schema.Vector writes the vector as of a
// time into a caller-owned slice (no allocation), and Schema.Replay does all three from a list
// of events. The store keeps a State between events with State.AppendBinary and
// State.UnmarshalBinary (compact, versioned, exact). Sessionisation (the 30-minute timeout) is
// the store's job: a State sees one session's events.
//
// # Schema identity
//
// SchemaVersion is bumped on any change to the feature code. Schema.Fingerprint is the hex of
// a SHA-256 over the version, the names and every spec part that shapes the values (event
// names, macro conversion, cart names, time zone, bucket count); a State carries a prefix of
// it, and Vector refuses a State built for another schema (ErrSchemaMismatch).
//
// # Features
//
// Times are in seconds unless the name says otherwise; "start" is the session's earliest event
// (or asOf for a state without events). Vectors never contain NaN or Inf.
//
//	name                        kind        meaning
//	events                      count       events folded
//	time_on_site_s              continuous  last event - first event
//	time_since_start_s          continuous  asOf - first event (0 if asOf is earlier)
//	time_since_last_event_s     continuous  asOf - last event (0 if asOf is earlier)
//	active_time_s               continuous  sum of gaps between consecutive events, each capped
//	                                        at 5 min (ActiveGapCapMS), plus engaged_time_s
//	engaged_time_s              continuous  sum of props engaged_ms (each capped at a day)
//	max_scroll_pct              continuous  largest props scroll_pct, capped at 100
//	page_views                  count       page_view events
//	unique_pages                count       distinct page paths (props path, else the path of
//	                                        props url; no query, fragment or trailing slash),
//	                                        exact up to MaxUniquePages (64), then saturated
//	clicks                      count       click events
//	errors                      count       error events, and other events with props error_kind
//	errors_client               count       ... whose error_kind is "client"
//	errors_form                 count       ... whose error_kind is "form"
//	error_rate_per_page         continuous  errors / max(1, page_views)
//	sessions_7d                 count       VisitorHistory.Sessions7d
//	sessions_30d                count       VisitorHistory.Sessions30d
//	has_prev_visit              binary      VisitorHistory.LastSessionTS > 0
//	days_since_prev_visit       continuous  start - LastSessionTS in days, in [0, 365];
//	                                        365 (NoneDays) when there is none
//	prior_conversions           count       VisitorHistory.Conversions (frequency)
//	prior_monetary              continuous  VisitorHistory.Monetary (monetary)
//	has_prior_conversion        binary      Conversions > 0 or LastConversionTS > 0
//	days_since_last_conversion  continuous  recency in days, in [0, 365]; 365 when none
//	converted_in_session        binary      a macro_conversion event, or an event named
//	                                        Spec.MacroConversion, was folded
//	exposures                   count       exposure events
//	identified                  binary      an identify event, or any event with a UserID
//	cart_value                  continuous  running cart value (below)
//	cart_adds                   count       events named in Spec.CartAdd
//	funnel_phase                count       1-based index of the deepest phase one of whose
//	                                        milestones was reached; 0 when none
//	phase_none, phase_<phase>   binary      one-hot of funnel_phase (phase names snake_cased)
//	ms_<name>_count             count       events named after the milestone, per milestone in
//	ms_<name>_reached           binary      spec order (phase by phase)
//	sa_<name>_count             count       the same for each secondary action
//	sa_<name>_reached           binary
//	device_unknown|mobile|tablet|desktop    binary  one-hot of props device ("phone" is
//	                                        mobile) of the earliest event carrying a known one
//	channel_direct|organic|paid|social|email|referral|other  binary  one-hot of the landing
//	                                        event's channel (below)
//	source_bNN                  binary      one-hot of the landing source's hash bucket
//	medium_bNN                  binary      ... medium's
//	campaign_bNN                binary      ... campaign's
//	landing_group_bNN           binary      ... landing page group's
//	hour_sin, hour_cos          cyclic      hour of day (with minutes) of start in Spec.TimeZone
//	dow_sin, dow_cos            cyclic      day of week (Sunday = 0) of start in Spec.TimeZone
//
// Milestones, secondary actions and the cart events match events of type micro_conversion,
// custom and click by Name.
//
// Cart value: each event named in Spec.CartAdd (default add_to_cart) adds its Value, each named
// in Spec.CartRemove (default remove_from_cart) subtracts it (never below 0); an event with
// props cart_value sets the value outright (the latest such event by time wins), and later adds
// and removals apply on top of it. Negative, NaN and infinite values are ignored.
//
// Landing event: the earliest event (by TS) that is a page view or carries a page, utm_source
// or referrer. Its props give the traffic source: utm_source / utm_medium / utm_campaign when
// utm_source is present; otherwise from the referrer host: none is (direct)/(none), a search
// engine is <engine>/organic, a social site is <host>/social, another host is <host>/referral
// (see DeriveTraffic). A missing campaign is (none). The landing page group is props
// page_group, else the first path segment ((root) for "/"). Categoricals are hashed with
// HashCategory (FNV-1a 64 over the trimmed, ASCII-lowered value) into Spec.HashBuckets buckets
// (default 8): bucket = hash % buckets. A session without a landing event is direct.
//
// Out-of-order events: the fold keeps the earliest and latest timestamps. An event later than
// every other adds its capped gap to active time; one earlier than every other moves the start
// back and adds its capped gap; one in between adds no active time (it cannot be placed without
// keeping every timestamp). Device, landing event and cart_value are chosen by timestamp, so
// they do not depend on arrival order. Nothing ever becomes negative.
//
// Consent is not looked at: the caller decides what is stored and the fold is the same.
package features
