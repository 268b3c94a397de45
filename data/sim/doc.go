// Package sim owns the traffic simulator: visitors of the demo shop with a latent intent drawn
// from segments, their sessions as realistic features.Event streams, a decision point where a
// Decider chooses an intervention, and the visitor's true response to it. It knows every
// session's true conversion probability under control and under each intervention (Truth), so
// tests can compare a learnt policy with the oracle.
//
// Segments (the latent intent) and what reveals them:
//
//   - persuadable_price: price-sensitive, converts more with discount10 (large), chat_offer and
//     help_tip (small). Arrives from price-comparison and paid search, mostly mobile, reaches
//     the cart quickly, moderate pace, revisits.
//   - persuadable_confused: struggles with the site; chat_offer helps a lot, help_tip some,
//     discount10 little. Organic/social traffic, desktop, slow pace, client and form errors.
//   - sure_thing: buys anyway; interventions change nothing (they only cost). Direct and
//     email traffic, fast, deep into the funnel, often identified, many revisits.
//   - lost_cause: never buys whatever is shown. Social traffic, mobile, very fast, shallow.
//   - sleeping_dog: buys fairly often unless interrupted; every intervention lowers conversion,
//     chat_offer most. Organic search, desktop, watches videos and downloads, few errors.
//
// Each session's conversion is decided with a per-session uniform draw fixed by the seed
// (common random numbers): the same seed under two policies gives the same visitors, the same
// pre-decision events and comparable outcomes.
//
// It imports features/ only: not data/store, not serve, not training.
package sim
