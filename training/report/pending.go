package report

import "context"

import "github.com/nudgehq/nudge/data/store"

// The lift, impact and attribution sections are being written; until then they are empty
// and the report says so.

func (b *builder) lift(r *Report) {
	r.Notes = append(r.Notes, "lift is not computed yet in this build")
}

func (b *builder) impact(ctx context.Context, st *store.Store, r *Report) error {
	r.Notes = append(r.Notes, "impact is not computed yet in this build")
	return nil
}

func (b *builder) attribution(r *Report) {
	r.Notes = append(r.Notes, "attribution is not computed yet in this build")
}
