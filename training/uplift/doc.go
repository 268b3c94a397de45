// Package uplift owns multi-arm uplift learning and evaluation: T-, X- and transformed-outcome
// learners on top of the binary training.Learner, their serialisable models, the uplift
// metrics (Qini, AUUC, uplift at k) with bootstrap intervals and cross-validation, and
// off-policy evaluation (IPS, SNIPS) of decision policies from logged probabilities.
//
// It imports training/, model/ and gonum; it must not import data/store, serve/ or echo.
//
// # Arms
//
// Dataset.T holds each row's arm (index into Dataset.Arms, 0 the control). A Model predicts,
// for each treatment arm k >= 1, the uplift tau_k(x) = P(y=1|x, k) - P(y=1|x, control).
// Every metric is computed per arm on the rows of that arm ("treated") and of the control.
//
// # Metric definitions
//
// Rows are sorted by predicted uplift, descending; ties keep the rows' input order (stable
// sort). n is the number of rows, w_i the row weight (1 by default; W/P with EvalOptions.IPS).
// Over the top k rows (k = 1..n):
//
//	N_t(k), N_c(k)  = sum of w over treated, control rows
//	Y_t(k), Y_c(k)  = sum of w*y over treated, control rows
//
// Qini curve: Qini(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k) (the control term is 0 while
// N_c(k) = 0): incremental conversions among the top k, in treated units. The random line is
// (k/n) * Qini(n).
//
// Qini coefficient: the mean gap between the model's curve and the random line, per treated
// unit:
//
//	Qini = (1/n) * sum_{k=1..n} [Qini(k) - (k/n)*Qini(n)] / N_t(n)
//
// 0 for a random ranking in expectation, positive when the ranking beats random.
//
// Uplift curve: U(k) = (Y_t(k)/N_t(k) - Y_c(k)/N_c(k)) * k (0 while either count is 0).
// AUUC is the normalised area under it (right Riemann sum on [0,1] x rate):
//
//	AUUC = (1/n^2) * sum_{k=1..n} U(k)
//
// A random ranking has AUUC = ATE * (n+1)/(2n) in expectation (Metrics.AUUCRandom), where
// ATE = Y_t(n)/N_t(n) - Y_c(n)/N_c(n).
//
// Uplift at f (10, 20, 30%): with m = ceil(f*n), Y_t(m)/N_t(m) - Y_c(m)/N_c(m), the difference
// of conversion rates treated vs control within the top fraction f (NaN when one group is
// empty there).
//
// Bootstrap intervals: B replicates resample the rows with replacement (seeded PCG) keeping the
// model's scores; each metric's interval is the percentile interval [q_(1-L)/2, q_(1+L)/2] of
// its replicates (linear interpolation), L = EvalOptions.Level (0.95 by default).
//
// CrossValidate pools the out-of-fold predictions of K folds (seeded shuffle) and evaluates
// them once, or, time-ordered, fits on the earliest rows by TS and evaluates on the latest
// TestFraction.
//
// # Learners
//
// TLearner fits one outcome model per arm with any training.Learner. XLearner adds the
// imputed-effect regressions and propensity weighting (see its doc). TransformedOutcome
// regresses Z = Y*(1{T=k}/P - 1{T=0}/P) with the logged probabilities. Regressions are either
// Ridge (weighted ridge regression via gonum/mat) or ViaClassifier, a documented reduction of
// a bounded regression to any binary learner (each row split into a positive and a negative
// row weighted q and 1-q). XLearner.Eligible and EvalOptions.Eligible take the site's
// eligibility rules as a function of the feature row, so an arm is learnt and evaluated only
// where it could have been shown.
//
// # Off-policy evaluation
//
// From logged rows (arm a_i, its logged probability P_i, reward r_i) and a target policy pi
// (arm probabilities per row), with w_i = pi(a_i|x_i)/P_i:
//
//	IPS   = (1/n) sum w_i r_i
//	SNIPS = sum w_i r_i / sum w_i
//
// The logging (current) policy has w_i = 1: its value is the mean reward. Compare gives both
// policies and their difference with a paired percentile bootstrap over rows. ChooseThreshold
// picks a policy's expected-value threshold by SNIPS on rows logged by a randomised policy.
//
// # Artifacts
//
// Write/Read store a Model as JSON: {"format": "nudge-uplift/1", "kind", "arms", "features",
// and the parts}. The model package has no Write/Read for model.Binary yet, so binary parts go
// through a BinaryCodec; DefaultCodec handles *model.Logistic, *model.Ensemble and
// *model.Calibrated (recursively), and this package's regressions (*Linear, *Scaled) are
// written directly.
package uplift
