package store

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// ReplayAll calls fn, in start-time order, for every logged session of a site that started in
// [fromTS, toTS), with what a replay of it folds: the visitor history as of its start and its
// logged events in time order. It reads everything in one consistent snapshot; it is the bulk
// path for training (replay each session as of any decision time with Schema.Replay). fn must
// not keep evs after it returns.
func (s *Store) ReplayAll(ctx context.Context, site string, fromTS, toTS int64, fn func(info SessionInfo, hist features.VisitorHistory, evs []features.Event) error) error {
	return s.view(func(txn *badger.Txn) error {
		return scanSessionRecords(ctx, txn, site, fromTS, toTS, "replay all", func(id string, rec *sessionRecord) error {
			hist, evs, err := replayInput(txn, site, id)
			if err != nil {
				return fmt.Errorf("store: replay all: %w", err)
			}
			return fn(rec.info(site, id), hist, evs)
		})
	})
}
