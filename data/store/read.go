package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// History windows (see features.VisitorHistory).
const (
	day      = int64(24 * 60 * 60 * 1000)
	window7  = 7 * day
	window30 = 30 * day
)

// SessionInfo describes a server session.
type SessionInfo struct {
	Site, Session, ClientSessionID, AnonymousID, UserID string
	StartTS, LastTS                                     int64
	Events                                              int  // events folded into its state, logged or not
	Converted                                           bool // a macro conversion happened
	Logged                                              bool // its events are logged: no Consent=false event so far
}

func (r *sessionRecord) info(site, id string) SessionInfo {
	return SessionInfo{
		Site: site, Session: id, ClientSessionID: r.Client, AnonymousID: r.Anon, UserID: r.User,
		StartTS: r.StartTS, LastTS: r.LastTS, Events: r.Events, Converted: r.Converted,
		Logged: !r.Withdrawn,
	}
}

// sessionRecord reads a session record: cache first, else one Badger lookup.
func (s *Store) sessionRecord(site, session string, rec *sessionRecord) error {
	sk := key(nsSession, site, session)
	if val, ok := s.sessions.get(string(sk)); ok {
		return decodeSession(val, rec)
	}
	return s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(sk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("store: session %q of site %q: %w", session, site, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: read session: %w", err)
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("store: read session: %w", err)
		}
		return decodeSession(val, rec)
	})
}

// Session returns a session's metadata and its logged events in time order.
func (s *Store) Session(ctx context.Context, site, session string) (SessionInfo, []features.Event, error) {
	if err := ctx.Err(); err != nil {
		return SessionInfo{}, nil, fmt.Errorf("store: session: %w", err)
	}
	var rec sessionRecord
	if err := s.sessionRecord(site, session, &rec); err != nil {
		return SessionInfo{}, nil, err
	}
	var evs []features.Event
	err := s.view(func(txn *badger.Txn) error {
		var err error
		evs, err = readEvents(txn, site, session)
		return err
	})
	if err != nil {
		return SessionInfo{}, nil, err
	}
	return rec.info(site, session), evs, nil
}

// ResolveSession returns the current server session of a client session id.
func (s *Store) ResolveSession(ctx context.Context, site, clientSessionID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("store: resolve session: %w", err)
	}
	var id string
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key(nsClient, site, clientSessionID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("store: client session %q of site %q: %w", clientSessionID, site, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: resolve session: %w", err)
		}
		return item.Value(func(v []byte) error { id = string(v); return nil })
	})
	return id, err
}

// Features writes the live feature vector of a session as of asOfTS into out (len = the
// schema's Len) and returns the schema it follows. It costs one Badger lookup, or none when
// the session is cached. A nil out is allowed (the vector is computed and dropped: use
// FeatureVector to get an allocated one). If the site's schema changed since the state was
// built, the vector is replayed from the log instead.
func (s *Store) Features(ctx context.Context, site, session string, asOfTS int64, out []float64) (*features.Schema, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: features: %w", err)
	}
	sc, err := s.schema(site)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = make([]float64, sc.Len())
	}
	var kb [128]byte
	var replay bool
	if val, ok := s.sessions.get(string(appendKey2(kb[:0], nsSession, site, session))); ok {
		replay, err = vectorOf(sc, session, val, asOfTS, out)
	} else {
		replay, err = s.featuresCold(sc, site, session, asOfTS, out)
	}
	if err != nil {
		return nil, err
	}
	if replay {
		return s.Replay(ctx, site, session, asOfTS, out)
	}
	return sc, nil
}

// featuresCold is Features' read through Badger (its closure kept off the cached path).
func (s *Store) featuresCold(sc *features.Schema, site, session string, asOfTS int64, out []float64) (replay bool, err error) {
	err = s.getValue(key(nsSession, site, session), func(val []byte) error {
		var err error
		replay, err = vectorOf(sc, session, val, asOfTS, out)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("store: session %q of site %q: %w", session, site, ErrNotFound)
	}
	return replay, err
}

// vectorOf writes the vector of an encoded session record into out, or reports that the
// record's state follows another schema (replay). It allocates nothing but the state's
// per-action counts.
func vectorOf(sc *features.Schema, session string, val []byte, asOfTS int64, out []float64) (replay bool, err error) {
	fp, state, err := sessionState(val)
	if err != nil {
		return false, err
	}
	if string(fp) != sc.Fingerprint {
		return true, nil
	}
	var st features.State
	if err := st.UnmarshalBinary(state); err != nil {
		return false, fmt.Errorf("store: session %q state: %w", session, err)
	}
	if err := sc.Vector(&st, asOfTS, out); err != nil {
		return false, fmt.Errorf("store: features of %q: %w", session, err)
	}
	return false, nil
}

// getValue looks k up in a read-only transaction and calls fn with its value, which is
// valid only during fn (no copy is made). A missing key is ErrNotFound.
func (s *Store) getValue(k []byte, fn func(val []byte) error) error {
	txn, err := s.readTxn()
	if err != nil {
		return err
	}
	defer s.endRead(txn)
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: read: %w", err)
	}
	return item.Value(fn)
}

// readTxn starts a read-only transaction unless the store is closed; endRead ends it. They
// are view without its closure, for the hot read paths.
func (s *Store) readTxn() (*badger.Txn, error) {
	s.life.RLock()
	if s.dbShut {
		s.life.RUnlock()
		return nil, ErrClosed
	}
	return s.db.NewTransaction(false), nil
}

func (s *Store) endRead(txn *badger.Txn) {
	txn.Discard()
	s.life.RUnlock()
}

// FeatureVector is Features with an allocated vector.
func (s *Store) FeatureVector(ctx context.Context, site, session string, asOfTS int64) ([]float64, *features.Schema, error) {
	sc, err := s.schema(site)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float64, sc.Len())
	sc, err = s.Features(ctx, site, session, asOfTS, out)
	if err != nil {
		return nil, nil, err
	}
	return out, sc, nil
}

// Replay builds a session's vector as of asOfTS from the event log with the same fold as live
// ingest, and the visitor history computed as of the session's start the same way ingest
// does. Unlogged (no-consent) events are not in the log, so they are not replayed.
func (s *Store) Replay(ctx context.Context, site, session string, asOfTS int64, out []float64) (*features.Schema, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: replay: %w", err)
	}
	sc, err := s.schema(site)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = make([]float64, sc.Len())
	}
	err = s.view(func(txn *badger.Txn) error {
		hist, evs, err := replayInput(txn, site, session)
		if err != nil {
			return err
		}
		return sc.Replay(hist, evs, asOfTS, out)
	})
	if err != nil {
		return nil, fmt.Errorf("store: replay %q: %w", session, err)
	}
	return sc, nil
}

// ReplayInput returns what Replay folds: the visitor history as of the session's start and
// the session's logged events in time order. Training uses it to replay many as-of times.
func (s *Store) ReplayInput(ctx context.Context, site, session string) (features.VisitorHistory, []features.Event, error) {
	if err := ctx.Err(); err != nil {
		return features.VisitorHistory{}, nil, fmt.Errorf("store: replay input: %w", err)
	}
	var hist features.VisitorHistory
	var evs []features.Event
	err := s.view(func(txn *badger.Txn) error {
		var err error
		hist, evs, err = replayInput(txn, site, session)
		return err
	})
	return hist, evs, err
}

func replayInput(txn *badger.Txn, site, session string) (features.VisitorHistory, []features.Event, error) {
	var hist features.VisitorHistory
	evs, err := readEvents(txn, site, session)
	if err != nil {
		return hist, nil, err
	}
	// The history is computed as of the time ingest computed it (the session's first
	// arrival), which the session record keeps; the log alone gives the first event.
	var anon string
	var at int64
	item, err := txn.Get(key(nsSession, site, session))
	switch {
	case err == nil:
		var rec sessionRecord
		if err := item.Value(func(v []byte) error { return decodeSession(v, &rec) }); err != nil {
			return hist, nil, err
		}
		anon, at = rec.Anon, rec.HistTS
	case errors.Is(err, badger.ErrKeyNotFound):
		if len(evs) == 0 {
			return hist, nil, fmt.Errorf("store: session %q of site %q: %w", session, site, ErrNotFound)
		}
		anon, at = evs[0].AnonymousID, evs[0].TS
	default:
		return hist, nil, fmt.Errorf("store: read session: %w", err)
	}
	known, err := exists(txn, key(nsVisitor, site, anon))
	if err != nil || !known {
		return hist, evs, err
	}
	hist, err = computeHistory(historySource{txn: txn}, site, anon, at)
	return hist, evs, err
}

func exists(txn *badger.Txn, k []byte) (bool, error) {
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: lookup: %w", err)
	}
	return true, nil
}

// readEvents reads a session's logged events in time order.
func readEvents(txn *badger.Txn, site, session string) ([]features.Event, error) {
	prefix := key(nsEvent, site, session)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchSize = 16
	it := txn.NewIterator(opts)
	defer it.Close()
	var evs []features.Event
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		var ev features.Event
		if err := it.Item().Value(func(v []byte) error { return decodeEvent(v, &ev) }); err != nil {
			return nil, fmt.Errorf("store: read events of %q: %w", session, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// VisitorHistory returns what is known of a visitor (and every anonymous id of the same user)
// strictly before beforeTS: the same computation ingest runs at a session's first event.
func (s *Store) VisitorHistory(ctx context.Context, site, anonymousID string, beforeTS int64) (features.VisitorHistory, error) {
	if err := ctx.Err(); err != nil {
		return features.VisitorHistory{}, fmt.Errorf("store: visitor history: %w", err)
	}
	var hist features.VisitorHistory
	err := s.view(func(txn *badger.Txn) error {
		var err error
		hist, err = computeHistory(historySource{txn: txn}, site, anonymousID, beforeTS)
		return err
	})
	return hist, err
}

// IdentityLink is one recorded Identify: an anonymous id linked to a user id.
type IdentityLink struct {
	AnonymousID, UserID string
	TS                  int64
	EventID             string
}

// Identities returns every link recorded for a user id in time order, including links of
// anonymous ids that belong to another user (see the identity rule in the package doc).
func (s *Store) Identities(ctx context.Context, site, userID string) ([]IdentityLink, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: identities: %w", err)
	}
	var links []IdentityLink
	prefix := key(nsLinkByUser, site, userID)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) < len(prefix)+8 {
				return fmt.Errorf("%w: link key", ErrCorrupt)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("store: identities: %w", err)
			}
			links = append(links, IdentityLink{
				AnonymousID: string(v), UserID: userID,
				TS: decodeTS(k[len(prefix):]), EventID: string(k[len(prefix)+8:]),
			})
		}
		return nil
	})
	return links, err
}

// ScanSessions calls fn for every logged session of a site that started in [fromTS, toTS), in
// start-time order. Sessions whose first event had no consent are not listed.
func (s *Store) ScanSessions(ctx context.Context, site string, fromTS, toTS int64, fn func(SessionInfo) error) error {
	return s.view(func(txn *badger.Txn) error {
		return scanSessionRecords(ctx, txn, site, fromTS, toTS, "scan sessions", func(id string, rec *sessionRecord) error {
			return fn(rec.info(site, id))
		})
	})
}

// scanSessionRecords walks the sessions-by-time index of a site over [fromTS, toTS) inside txn
// and calls fn with each session's id and decoded record, in start-time order. op names the
// caller in errors.
func scanSessionRecords(ctx context.Context, txn *badger.Txn, site string, fromTS, toTS int64, op string, fn func(id string, rec *sessionRecord) error) error {
	prefix := key(nsSessionByTime, site)
	start := appendTS(append([]byte(nil), prefix...), fromTS)
	end := appendTS(append([]byte(nil), prefix...), toTS)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: %s: %w", op, err)
		}
		k := it.Item().Key()
		if string(k[:len(end)]) >= string(end) {
			break
		}
		id := string(k[len(prefix)+8:])
		item, err := txn.Get(key(nsSession, site, id))
		if err != nil {
			return fmt.Errorf("store: %s: session %q: %w", op, id, err)
		}
		var rec sessionRecord
		if err := item.Value(func(v []byte) error { return decodeSession(v, &rec) }); err != nil {
			return err
		}
		if err := fn(id, &rec); err != nil {
			return err
		}
	}
	return nil
}
