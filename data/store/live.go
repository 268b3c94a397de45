package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// LiveSession is the decide path's read: it resolves a client session id (or a server
// session id) to the current server session and writes that session's live vector as of
// asOfTS into out (len = the schema's Len; nil allocates), returning the session's metadata
// (its anonymous and user ids drive the sticky holdout) and the schema the vector follows.
// A session written since the store opened is read from memory (no Badger transaction);
// others cost one read transaction with one or two lookups. An unknown id is ErrNotFound. If the site's schema changed since the
// state was built, the vector is replayed from the log instead.
func (s *Store) LiveSession(ctx context.Context, site, sessionID string, asOfTS int64, out []float64) (SessionInfo, *features.Schema, error) {
	if err := ctx.Err(); err != nil {
		return SessionInfo{}, nil, fmt.Errorf("store: live session: %w", err)
	}
	sc, err := s.schema(site)
	if err != nil {
		return SessionInfo{}, nil, err
	}
	id, val, err := s.liveRecord(site, sessionID)
	if err != nil {
		return SessionInfo{}, nil, err
	}
	var rec sessionRecord
	if err := decodeSession(val, &rec); err != nil {
		return SessionInfo{}, nil, err
	}
	if out == nil {
		out = make([]float64, sc.Len())
	}
	if rec.Fingerprint != sc.Fingerprint {
		if _, err := s.Replay(ctx, site, id, asOfTS, out); err != nil {
			return SessionInfo{}, nil, err
		}
		return rec.info(site, id), sc, nil
	}
	var st features.State
	if err := st.UnmarshalBinary(rec.State); err != nil {
		return SessionInfo{}, nil, fmt.Errorf("store: session %q state: %w", id, err)
	}
	if err := sc.Vector(&st, asOfTS, out); err != nil {
		return SessionInfo{}, nil, fmt.Errorf("store: features of %q: %w", id, err)
	}
	return rec.info(site, id), sc, nil
}

// liveRecord finds the current server session of id and its encoded record: from the caches
// the writer fills at every commit when both hit (no Badger transaction), else in one read
// transaction. An id that is no client session id is tried as a server session id.
func (s *Store) liveRecord(site, sessionID string) (string, []byte, error) {
	var kb [128]byte // cache keys built on the stack: the warm path allocates only the id
	if v, ok := s.clients.get(string(appendKey2(kb[:0], nsClient, site, sessionID))); ok {
		if val, ok := s.sessions.get(string(appendKey2(kb[:0], nsSession, site, string(v)))); ok {
			return string(v), val, nil
		}
	}
	ck := key(nsClient, site, sessionID)
	var (
		id  string
		val []byte
	)
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(ck)
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error { id = string(v); return nil }); err != nil {
				return fmt.Errorf("store: live session: %w", err)
			}
		case errors.Is(err, badger.ErrKeyNotFound):
			id = sessionID // maybe a server session id ("abc~2")
		default:
			return fmt.Errorf("store: live session: %w", err)
		}
		sk := key(nsSession, site, id)
		var ok bool
		if val, ok = s.sessions.get(string(sk)); ok {
			return nil
		}
		item, err = txn.Get(sk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("store: session %q of site %q: %w", sessionID, site, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: live session: %w", err)
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	return id, val, err
}

// appendKey2 appends ns|a|b (length-prefixed strings), the layout of key(ns, a, b).
func appendKey2(buf []byte, ns byte, a, b string) []byte {
	buf = append(buf, ns)
	buf = appendStr(buf, a)
	return appendStr(buf, b)
}
