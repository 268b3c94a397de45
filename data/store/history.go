package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// idxEntry is an index entry (visitor session, conversion, identity link) written in the
// current, uncommitted chunk.
type idxEntry struct {
	key []byte
	ts  int64
	val []byte
}

// historySource is what history is computed from: a committed snapshot and, in the writer,
// the index entries of the chunk being written (Badger's pending-writes iterator sorts every
// pending write on each iterator creation, which is far too slow for a 1000-event chunk) and
// of its parent, the previous chunk whose commit is still in flight (the snapshot predates
// it). The three never hold the same key. Replay uses the snapshot alone.
type historySource struct {
	txn     *badger.Txn
	overlay map[string][]idxEntry // by index prefix (ns|site|id)
	parent  map[string][]idxEntry // the in-flight parent chunk's, same shape
	// none, when set, reports that the snapshot certainly holds no key with the prefix, so
	// no iterator is needed (the writer's seen filter); false means "maybe".
	none func(prefix []byte) bool
	// sessions, when set, returns the start times of the snapshot's sessions of a
	// visitor-session prefix when it knows them all (the writer's cache); ok false means
	// "ask the snapshot".
	sessions func(prefix []byte) (starts []int64, ok bool)
}

// pending returns the uncommitted index entries of prefix: the chunk's, then its parent's.
func (h historySource) pending(prefix []byte) [2][]idxEntry {
	return [2][]idxEntry{h.overlay[string(prefix)], h.parent[string(prefix)]}
}

// committedSessions returns the snapshot's session start times of a visitor-session
// prefix when src.sessions knows them.
func (h historySource) committedSessions(prefix []byte) ([]int64, bool) {
	if h.sessions == nil {
		return nil, false
	}
	return h.sessions(prefix)
}

// scanBefore calls fn for the committed entries of prefix with ts < before, in key order
// (reverse order when reverse); fn returns false to stop.
func (h historySource) scanBefore(prefix []byte, before int64, reverse, values bool, fn func(k []byte, ts int64, item *badger.Item) (bool, error)) error {
	if h.none != nil && h.none(prefix) {
		return nil
	}
	it := h.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse, PrefetchValues: false})
	defer it.Close()
	if reverse {
		it.Seek(appendTS(append([]byte(nil), prefix...), before))
	} else {
		it.Seek(prefix)
	}
	for ; it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) < len(prefix)+8 {
			return fmt.Errorf("%w: index key", ErrCorrupt)
		}
		ts := decodeTS(k[len(prefix):])
		if ts >= before {
			if reverse {
				continue
			}
			return nil
		}
		more, err := fn(k, ts, item)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// ownerAsOf returns the user an anonymous id belongs to as of ts: the user of its earliest
// link (smallest key: time, then event id) strictly before ts; "" if none.
func ownerAsOf(src historySource, site, anon string, ts int64) (string, error) {
	prefix := key(nsLinkByAnon, site, anon)
	var bestKey []byte
	var user string
	err := src.scanBefore(prefix, ts, false, true, func(k []byte, _ int64, item *badger.Item) (bool, error) {
		v, err := item.ValueCopy(nil)
		if err != nil {
			return false, fmt.Errorf("store: read link: %w", err)
		}
		bestKey, user = append([]byte(nil), k...), string(v)
		return false, nil
	})
	if err != nil {
		return "", err
	}
	for _, es := range src.pending(prefix) {
		for _, e := range es {
			if e.ts < ts && (bestKey == nil || bytes.Compare(e.key, bestKey) < 0) {
				bestKey, user = e.key, string(e.val)
			}
		}
	}
	return user, nil
}

// linkedAnons returns anon and, when it belongs to a user as of ts, every anonymous id that
// belongs to the same user as of ts, sorted.
func linkedAnons(src historySource, site, anon string, ts int64) ([]string, error) {
	user, err := ownerAsOf(src, site, anon, ts)
	if err != nil || user == "" {
		return []string{anon}, err
	}
	prefix := key(nsLinkByUser, site, user)
	var cands []string
	addCand := func(a string) {
		if a != anon && !slices.Contains(cands, a) {
			cands = append(cands, a)
		}
	}
	err = src.scanBefore(prefix, ts, false, true, func(_ []byte, _ int64, item *badger.Item) (bool, error) {
		v, err := item.ValueCopy(nil)
		if err != nil {
			return false, fmt.Errorf("store: read link: %w", err)
		}
		addCand(string(v))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, es := range src.pending(prefix) {
		for _, e := range es {
			if e.ts < ts {
				addCand(string(e.val))
			}
		}
	}
	anons := []string{anon}
	for _, a := range cands {
		// An anonymous id linked to this user after having been linked to another one stays
		// with the first: two user ids are never merged.
		owner, err := ownerAsOf(src, site, a, ts)
		if err != nil {
			return nil, err
		}
		if owner == user {
			anons = append(anons, a)
		}
	}
	slices.Sort(anons)
	return anons, nil
}

// computeHistory is the one history computation shared by ingest and replay: sessions and
// macro conversions of the visitor's anonymous ids strictly before startTS.
func computeHistory(src historySource, site, anon string, startTS int64) (features.VisitorHistory, error) {
	var h features.VisitorHistory
	anons, err := linkedAnons(src, site, anon, startTS)
	if err != nil {
		return h, err
	}
	type conv struct {
		key []byte
		ts  int64
		v   float64
	}
	var convs []conv
	countSession := func(ts int64) {
		h.LastSessionTS = max(h.LastSessionTS, ts)
		if ts >= startTS-window30 {
			h.Sessions30d++
			if ts >= startTS-window7 {
				h.Sessions7d++
			}
		}
	}
	for _, a := range anons {
		// Sessions: backwards from startTS; the first one is the latest, stop past 30 days.
		prefix := key(nsVisitorSess, site, a)
		if starts, ok := src.committedSessions(prefix); ok {
			for _, ts := range starts {
				if ts < startTS {
					countSession(ts)
				}
			}
		} else {
			err := src.scanBefore(prefix, startTS, true, false, func(_ []byte, ts int64, _ *badger.Item) (bool, error) {
				countSession(ts)
				return ts >= startTS-window30, nil
			})
			if err != nil {
				return h, err
			}
		}
		for _, es := range src.pending(prefix) {
			for _, e := range es {
				if e.ts < startTS {
					countSession(e.ts)
				}
			}
		}
		// Conversions: all before startTS.
		prefix = key(nsConversion, site, a)
		err = src.scanBefore(prefix, startTS, false, true, func(k []byte, ts int64, item *badger.Item) (bool, error) {
			var v float64
			err := item.Value(func(b []byte) error {
				if len(b) != 8 {
					return fmt.Errorf("%w: conversion value", ErrCorrupt)
				}
				v = math.Float64frombits(binary.LittleEndian.Uint64(b))
				return nil
			})
			convs = append(convs, conv{append([]byte(nil), k...), ts, v})
			return true, err
		})
		if err != nil {
			return h, err
		}
		for _, es := range src.pending(prefix) {
			for _, e := range es {
				if e.ts < startTS {
					convs = append(convs, conv{e.key, e.ts, math.Float64frombits(binary.LittleEndian.Uint64(e.val))})
				}
			}
		}
	}
	// Sum in key order whatever the source, so ingest and replay round alike.
	slices.SortFunc(convs, func(a, b conv) int { return bytes.Compare(a.key, b.key) })
	for _, c := range convs {
		h.Conversions++
		h.LastConversionTS = max(h.LastConversionTS, c.ts)
		h.Monetary += c.v
	}
	return h, nil
}
