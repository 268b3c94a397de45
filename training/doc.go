// Package training owns fitting and evaluating models: the learners (logistic regression with
// gonum's L-BFGS, histogram gradient-boosted trees, calibration wrappers, an optional golearn
// comparison learner), metrics (ROC AUC, PR AUC, log loss, Brier, calibration tables,
// importance), splits (time-ordered holdout, K-fold by row index) and cross-validation.
//
// It imports data/, features/ and model/ of ours; it must not import serve/ or echo, and it
// does not open Badger itself.
package training
