package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// Stats are a site's counters, kept by the writer in the same transaction as the events.
type Stats struct {
	Events          map[string]int64 // logged events by type name
	Sessions        int64            // logged sessions (first event with consent)
	Visitors        int64            // distinct anonymous ids with a logged session
	Duplicates      int64            // events refused as duplicates of a stored event_id
	Unlogged        int64            // events without (or after withdrawn) consent
	FirstTS, LastTS int64            // earliest and latest logged event time (Unix ms), 0 if none
}

const maxTypes = 32

type siteCounters struct {
	Events                                   [maxTypes]int64
	Sessions, Visitors, Duplicates, Unlogged int64
	FirstTS, LastTS                          int64
	any                                      bool
}

func (c *siteCounters) add(ev *features.Event) {
	if int(ev.Type) < maxTypes {
		c.Events[ev.Type]++
	}
	if !c.any || ev.TS < c.FirstTS {
		c.FirstTS = ev.TS
	}
	if !c.any || ev.TS > c.LastTS {
		c.LastTS = ev.TS
	}
	c.any = true
}

const countersCodecV1 byte = 1

// encode: version | any | varints Sessions, Visitors, Duplicates, Unlogged, FirstTS, LastTS |
// uvarint n | n x (type byte, varint count).
func (c *siteCounters) encode() []byte {
	b := []byte{countersCodecV1, 0}
	if c.any {
		b[1] = 1
	}
	for _, v := range []int64{c.Sessions, c.Visitors, c.Duplicates, c.Unlogged, c.FirstTS, c.LastTS} {
		b = binary.AppendVarint(b, v)
	}
	n := 0
	for _, v := range c.Events {
		if v != 0 {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for t, v := range c.Events {
		if v != 0 {
			b = append(b, byte(t))
			b = binary.AppendVarint(b, v)
		}
	}
	return b
}

func (c *siteCounters) decode(b []byte) error {
	if len(b) < 2 || b[0] != countersCodecV1 {
		return fmt.Errorf("%w: counters version", ErrCorrupt)
	}
	*c = siteCounters{any: b[1] == 1}
	d := decoder{b: b[2:]}
	for _, p := range []*int64{&c.Sessions, &c.Visitors, &c.Duplicates, &c.Unlogged, &c.FirstTS, &c.LastTS} {
		*p = d.varint()
	}
	n := d.uvarint()
	for range n {
		if len(d.b) < 1 {
			d.bad = true
			break
		}
		t := d.b[0]
		d.b = d.b[1:]
		v := d.varint()
		if int(t) < maxTypes {
			c.Events[t] = v
		}
	}
	if d.bad {
		return fmt.Errorf("%w: counters", ErrCorrupt)
	}
	return nil
}

func readCounters(txn *badger.Txn, site string) (siteCounters, error) {
	var c siteCounters
	item, err := txn.Get(key(nsCounter, site))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("store: read counters: %w", err)
	}
	err = item.Value(c.decode)
	return c, err
}

// Stats returns a site's counters (one Badger lookup; nothing is scanned).
func (s *Store) Stats(ctx context.Context, site string) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	var c siteCounters
	err := s.view(func(txn *badger.Txn) error {
		var err error
		c, err = readCounters(txn, site)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	st := Stats{
		Events:   make(map[string]int64),
		Sessions: c.Sessions, Visitors: c.Visitors, Duplicates: c.Duplicates, Unlogged: c.Unlogged,
		FirstTS: c.FirstTS, LastTS: c.LastTS,
	}
	for _, t := range features.EventTypes() {
		st.Events[t.String()] = c.Events[t]
	}
	return st, nil
}

// Syncs is the number of fsyncs (of the redo log) the store has made for acknowledged batches since
// Open: with the events appended, the size of its commit groups.
func (s *Store) Syncs() int64 { return s.syncs.Load() }
