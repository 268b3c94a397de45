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
	prefix := key(nsSessionByTime, site)
	start := appendTS(append([]byte(nil), prefix...), fromTS)
	end := appendTS(append([]byte(nil), prefix...), toTS)
	return s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store: replay all: %w", err)
			}
			k := it.Item().Key()
			if string(k[:len(end)]) >= string(end) {
				break
			}
			id := string(k[len(prefix)+8:])
			item, err := txn.Get(key(nsSession, site, id))
			if err != nil {
				return fmt.Errorf("store: replay all: session %q: %w", id, err)
			}
			var rec sessionRecord
			if err := item.Value(func(v []byte) error { return decodeSession(v, &rec) }); err != nil {
				return err
			}
			hist, evs, err := replayInput(txn, site, id)
			if err != nil {
				return fmt.Errorf("store: replay all: %w", err)
			}
			if err := fn(rec.info(site, id), hist, evs); err != nil {
				return err
			}
		}
		return nil
	})
}
