// Package report computes what the marketer's dashboard and `nudge report` show: overview
// metrics with the previous period, a time series, the funnel by phase, micro-conversion
// rates, lift against the randomized holdout with confidence intervals, the predicted
// impact of the policy and attribution under five models. types.go is the contract shared
// with serve/dashboard and cmd/nudge.
package report
