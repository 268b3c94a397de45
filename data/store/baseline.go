package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// RawBaseline writes evs into a fresh Badger database at dir with the same key and value
// encoding as the event log plus the dedupe keys (no sessionisation, no state, no indexes),
// one plain badger.WriteBatch per batchSize events and one Sync at the end, with the store's
// Badger options. It returns the elapsed time: the baseline of the ingestion benchmark. The
// events' Session field is used as is (SessionID when empty).
func RawBaseline(ctx context.Context, dir string, evs []features.Event, batchSize int) (time.Duration, error) {
	if batchSize <= 0 {
		batchSize = 100
	}
	db, err := badger.Open(BadgerOptions(dir, false, slog.New(slog.DiscardHandler)))
	if err != nil {
		return 0, fmt.Errorf("store: baseline: open: %w", err)
	}
	defer db.Close()
	const site = "baseline"
	start := time.Now()
	var buf []byte
	for lo := 0; lo < len(evs); lo += batchSize {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("store: baseline: %w", err)
		}
		wb := db.NewWriteBatch()
		for i := lo; i < min(lo+batchSize, len(evs)); i++ {
			ev := &evs[i]
			sess := ev.Session
			if sess == "" {
				sess = ev.SessionID
			}
			buf = appendEvent(buf[:0], ev)
			if err := wb.Set(eventKey(site, sess, ev.TS, ev.EventID), append([]byte(nil), buf...)); err != nil {
				wb.Cancel()
				return 0, fmt.Errorf("store: baseline: %w", err)
			}
			if err := wb.Set(key(nsDedupe, site, ev.EventID), []byte(sess)); err != nil {
				wb.Cancel()
				return 0, fmt.Errorf("store: baseline: %w", err)
			}
		}
		if err := wb.Flush(); err != nil {
			return 0, fmt.Errorf("store: baseline: %w", err)
		}
	}
	if err := db.Sync(); err != nil {
		return 0, fmt.Errorf("store: baseline: sync: %w", err)
	}
	return time.Since(start), nil
}
