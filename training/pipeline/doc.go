// Package pipeline owns nudge's learn journey end to end: it builds point-in-time training
// sets from the event log and the decision log (data/store), fits and evaluates propensity
// and uplift models with the learners of training/ and training/uplift, registers them in the
// store's model registry, promotes them (refusing a feature-schema mismatch, with an
// off-policy estimate against the model in force), rolls them back, loads the promoted ones
// for serving, and exports and imports registry records.
//
// It imports data/store, data/config, features/, model/, training/ and its sub-packages; it
// must not import serve/ or echo.
//
// # Examples (point in time)
//
// Every logged session that started in [From, To) gives decision points:
//
//   - after its n-th event, for each n of Options.AfterEvents (default 3, 6, 10), at the time
//     t of that event (propensity rows only);
//   - at every logged decision of the session (store.Decisions), at the decision's time:
//     a propensity row, and an uplift row (arm, logged probability).
//
// A point's features are the session's events with time <= t folded by the same
// features.Schema.Replay that live ingest uses, started from the visitor history the store
// computed at the session's start: nothing after t is seen. A point at or after the session's
// own macro conversion is skipped (the outcome is already known).
//
// Label: 1 when the same visitor (anonymous id) has a macro conversion (an event of type
// macro_conversion, or named as the site's macro conversion) at a time in (t, t+Window]. The
// conversions come from the same scan of the log, which reads sessions up to To+Window, so
// the visitor's later sessions count too. Conversions of other anonymous ids of the same user
// (cross-device) are not counted: the label follows the cookie. Points whose window is not
// over yet (t+Window after the latest logged event) are left out, since their label is
// unknown. Dataset.TS is t, so evaluation is a time-ordered holdout (training.TimeSplit): no
// training row is later than a test row.
//
// # Uplift
//
// Arms are "control" (a decision with no intervention, Arm "") then the site's interventions
// in catalogue order. T is the arm, P the logged probability of that arm, Y the label above.
// Rows whose arm is not in the catalogue or whose probability is not in (0, 1] are skipped
// and counted. Learners: t (T-learner), x (X-learner, told the site's eligibility rules
// evaluated on the feature vector — funnel phase, page views, device — so control rows where
// an intervention could not have been shown do not shape its effect model), to (transformed
// outcome, inverse propensity weighted with P), all on strongly regularised gradient-boosted
// trees (200 trees, learning rate 0.05, depth 3, 70% row subsample, leaves of at least
// rows/40 rows within [20, 200]); auto
// fits all three and keeps the one whose greedy policy has the best self-normalised IPS value
// on the holdout.
// Evaluation on the time-ordered holdout: per arm Qini, AUUC (and its random baseline),
// uplift at 10/20/30% with bootstrap percentile intervals (uplift.EvaluateModel, inverse
// propensity weighted); and the off-policy value (IPS, SNIPS) of the greedy policy — for each
// decision the eligible intervention with the highest uplift x macro value - cost when above
// the site's threshold, else none — against the logging policy. The eligible interventions
// of a decision are its DecisionRecord.Interventions when logged, else the whole catalogue.
//
// # Registry
//
// Train registers one ModelRecord per kind (not promoted): artifact bytes (model.WriteArtifact
// with the full metrics and calibration table in its Info, or uplift.Write with
// uplift.DefaultCodec), learner, hyperparameters, schema fingerprint and feature names,
// training range and rows, scalar metrics. With Options.Refit the chosen learner is refitted
// on all rows after the holdout evaluation, and the registered artifact is that refit (the
// metrics stay the holdout's).
//
// Promote refuses a model whose fingerprint differs from the live schema's (ErrSchemaMismatch).
// For an uplift model, given the site (WithSite), it estimates off-policy (IPS, SNIPS with
// paired bootstrap intervals) the value per decision of the candidate's greedy policy against
// the promoted model's greedy policy (or the logging policy when none is promoted) on the
// logged decisions of the 14 days before the latest one — those after the candidate's
// training data when there are enough (out of sample); otherwise on all of them, flagged as
// in-sample (optimistic) with the holdout estimate Train stored quoted beside it. Rollback restores the promotion
// before the one in force (store.RollbackModel): promotions and rollbacks form a stack, so
// repeated rollbacks walk back through the history.
//
// # Tables
//
// TrainTable fits a data scientist's own table (training/table): K-fold cross-validation by
// row index, the propensity learners' CV table (training.WriteCVTable) or, with a treatment
// column, the uplift learners' pooled out-of-fold Qini/AUUC; the best learner is refitted on
// every row. Its fingerprint is TableFingerprint of the column names, so it never matches a
// site schema and cannot be promoted; it is for nudge predict and comparison.
//
// # Quality on simulated traffic (issue 5's bar)
//
// quality_test.go trains on a random-policy log of the simulator (data/sim) written through
// the real store and decision log, then decides a fresh simulation on the live vectors with
// the learnt model, and compares true values at a 30% budget. See the test docs for the
// figures and how to run the 25,000-visitor slow variant.
package pipeline
