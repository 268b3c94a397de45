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
// others cost one read transaction with two lookups (client pointer, then session record),
// whose values are decoded in place. An unknown id is ErrNotFound. If the site's schema
// changed since the state was built, the vector is replayed from the log instead.
func (s *Store) LiveSession(ctx context.Context, site, sessionID string, asOfTS int64, out []float64) (SessionInfo, *features.Schema, error) {
	if err := ctx.Err(); err != nil {
		return SessionInfo{}, nil, fmt.Errorf("store: live session: %w", err)
	}
	sc, err := s.schema(site)
	if err != nil {
		return SessionInfo{}, nil, err
	}
	if out == nil {
		out = make([]float64, sc.Len())
	}
	id, info, replay, err := s.liveRead(sc, site, sessionID, asOfTS, out)
	if err != nil {
		return SessionInfo{}, nil, err
	}
	if replay {
		if _, err := s.Replay(ctx, site, id, asOfTS, out); err != nil {
			return SessionInfo{}, nil, err
		}
	}
	return info, sc, nil
}

// liveVector decodes an encoded session record and writes its vector into out, unless its
// state follows another schema (replay).
func liveVector(sc *features.Schema, site, id string, val []byte, asOfTS int64, out []float64) (SessionInfo, bool, error) {
	var rec sessionRecord
	if err := decodeSession(val, &rec); err != nil {
		return SessionInfo{}, false, err
	}
	if rec.Fingerprint != sc.Fingerprint {
		return rec.info(site, id), true, nil
	}
	var st features.State
	if err := st.UnmarshalBinary(rec.State); err != nil {
		return SessionInfo{}, false, fmt.Errorf("store: session %q state: %w", id, err)
	}
	if err := sc.Vector(&st, asOfTS, out); err != nil {
		return SessionInfo{}, false, fmt.Errorf("store: features of %q: %w", id, err)
	}
	return rec.info(site, id), false, nil
}

// liveRead finds the current server session of sessionID and reads it (see liveVector): from
// the caches the writer fills at every commit when both hit (no Badger transaction), else in
// one read transaction. An id that is no client session id is tried as a server session id.
func (s *Store) liveRead(sc *features.Schema, site, sessionID string, asOfTS int64, out []float64) (string, SessionInfo, bool, error) {
	var kb [128]byte // cache keys built on the stack: the warm path allocates only the id
	if v, ok := s.clients.get(string(appendKey2(kb[:0], nsClient, site, sessionID))); ok {
		id := string(v)
		if val, ok := s.sessions.get(string(appendKey2(kb[:0], nsSession, site, id))); ok {
			info, replay, err := liveVector(sc, site, id, val, asOfTS, out)
			return id, info, replay, err
		}
	}
	return s.liveCold(sc, site, sessionID, asOfTS, out)
}

// liveCold is liveRead through Badger: the client pointer, then the session record, in one
// read-only transaction; the record is decoded where Badger holds it.
func (s *Store) liveCold(sc *features.Schema, site, sessionID string, asOfTS int64, out []float64) (id string, info SessionInfo, replay bool, err error) {
	txn, err := s.readTxn()
	if err != nil {
		return "", SessionInfo{}, false, err
	}
	defer s.endRead(txn)
	id = sessionID // unless a client pointer says otherwise: maybe a server session id ("abc~2")
	item, err := txn.Get(key(nsClient, site, sessionID))
	switch {
	case err == nil:
		if err := item.Value(func(v []byte) error { id = string(v); return nil }); err != nil {
			return "", SessionInfo{}, false, fmt.Errorf("store: live session: %w", err)
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return "", SessionInfo{}, false, fmt.Errorf("store: live session: %w", err)
	}
	sk := key(nsSession, site, id)
	if val, ok := s.sessions.get(string(sk)); ok {
		info, replay, err = liveVector(sc, site, id, val, asOfTS, out)
		return id, info, replay, err
	}
	item, err = txn.Get(sk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", SessionInfo{}, false, fmt.Errorf("store: session %q of site %q: %w", sessionID, site, ErrNotFound)
	}
	if err != nil {
		return "", SessionInfo{}, false, fmt.Errorf("store: live session: %w", err)
	}
	err = item.Value(func(v []byte) error {
		var err error
		info, replay, err = liveVector(sc, site, id, v, asOfTS, out)
		return err
	})
	if err != nil {
		return "", SessionInfo{}, false, err
	}
	return id, info, replay, nil
}

// appendKey2 appends ns|a|b (length-prefixed strings), the layout of key(ns, a, b).
func appendKey2(buf []byte, ns byte, a, b string) []byte {
	buf = append(buf, ns)
	buf = appendStr(buf, a)
	return appendStr(buf, b)
}
