package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
)

// The decision log (see also the key space in the package doc):
//
//	0x12  decision log    site|ts|decision_id   -> DecisionRecord (codec v1)
//	0x13  decision by id  site|decision_id      -> ts (8 bytes, sign-flipped big-endian)
//	0x14  exposure link   site|decision_id      -> event id of the first exposure naming it
//
// Decisions are written by the store's single writer goroutine, in the same write groups as
// ingest batches, and made durable by the group's fsync; a group of decisions only is written
// in one Badger write batch without an fsync of its own, and made durable by the next ingest
// group's fsync (or Close). LogDecision waits for neither (the decide path must not): a crash
// can lose the decisions logged in the last few milliseconds before it (a killed process
// loses those still queued; a power cut or kernel crash also those written since the last
// fsync, which on an idle server can be longer). Acknowledged events are never lost. An
// exposure event (type exposure) whose props carry "decision_id" records the link 0x14 in the
// same transaction as the event itself.
const (
	nsDecisionByID  byte = 0x13
	nsExposureLink  byte = 0x14
	decisionCodecV1 byte = 1

	// DecisionIDProp is the event prop that links an exposure to its decision.
	DecisionIDProp = "decision_id"
)

// DecisionRecord is one logged decision of the decide path.
type DecisionRecord struct {
	ID, Site, Session, AnonymousID, UserID, Page string
	TS                                           int64   // Unix ms
	Group                                        string  // "treatment" | "holdout" | "explore"
	Arm                                          string  // intervention id, "" = none
	Probability                                  float64 // logged probability of Arm (see model/policy)
	Propensity                                   float64
	Interventions                                []string  // catalogue ids, index-aligned with Uplift
	Uplift                                       []float64 // nil when no uplift model
	PropensityVersion, UpliftVersion             int       // 0 = none
	Fingerprint                                  string    // feature schema fingerprint
	Reason                                       string
}

// LogDecision queues a decision for the writer goroutine and returns without waiting for it
// to be written: it is group-committed with the next ingest group (or on its own) and synced
// by that group's fsync, so a crash may lose the decisions of the last few milliseconds. It
// fails fast with ErrOverloaded when the write queue is full and ErrClosed once the store is
// closing; Close writes every decision queued before it. rec must not be modified after the
// call. rec.ID and rec.Site are required.
func (s *Store) LogDecision(ctx context.Context, rec *DecisionRecord) error {
	if rec == nil || rec.ID == "" || rec.Site == "" {
		return fmt.Errorf("store: log decision: id and site are required")
	}
	if len(rec.Uplift) != 0 && len(rec.Uplift) != len(rec.Interventions) {
		return fmt.Errorf("store: log decision: %d uplift values for %d interventions", len(rec.Uplift), len(rec.Interventions))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: log decision: %w", err)
	}
	r := &request{site: rec.Site, decision: rec}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.pending+1 > s.opts.QueueLimit:
		s.mu.Unlock()
		return ErrOverloaded
	}
	s.queue = append(s.queue, r)
	s.pending++
	s.mu.Unlock()
	s.signal()
	return nil
}

// addDecision writes a queued decision into the writer's chunk.
func (c *chunk) addDecision(rec *DecisionRecord) error {
	c.events++
	k := decisionKey(rec.Site, rec.TS, rec.ID)
	if err := c.set(k, appendDecision(make([]byte, 0, 128), rec)); err != nil {
		return err
	}
	return c.set(key(nsDecisionByID, rec.Site, rec.ID), appendTS(nil, rec.TS))
}

// onlyDecisions reports whether a write group holds decisions only.
func onlyDecisions(reqs []*request) bool {
	for _, r := range reqs {
		if r.decision == nil {
			return false
		}
	}
	return true
}

// writeDecisions writes a group of decisions in one Badger transaction (committed and
// continued in a new one whenever Badger finds it too big), without the chunk overlay ingest
// needs and without an fsync of its own: its redo log record (written first, as for a chunk)
// is synced with the next ingest batch or registry update. The keys and values of the whole
// group are laid out in one buffer, its entries in one slice. A plain transaction rather
// than a WriteBatch: the batch's asynchronous commit costs a goroutine, a throttle and a
// spare transaction per group, and the writer waits for it anyway.
func (s *Store) writeDecisions(reqs []*request) error {
	n := 0
	for _, r := range reqs {
		n += decisionSizeHint(r.decision)
	}
	buf := make([]byte, 0, n)
	entries := make([]badger.Entry, 0, 2*len(reqs)) // one allocation for the group's entries
	add := func(start, mid int) {
		entries = append(entries, badger.Entry{Key: buf[start:mid:mid], Value: buf[mid:len(buf):len(buf)]})
	}
	for _, r := range reqs {
		rec := r.decision
		start := len(buf)
		buf = appendDecisionKey(buf, rec.Site, rec.TS, rec.ID)
		mid := len(buf)
		buf = appendDecision(buf, rec)
		add(start, mid)
		start = len(buf)
		buf = append(buf, nsDecisionByID)
		buf = appendStr(buf, rec.Site)
		buf = appendStr(buf, rec.ID)
		mid = len(buf)
		buf = appendTS(buf, rec.TS)
		add(start, mid)
	}
	var seq uint64
	if s.redo != nil {
		var rec []byte
		for i := range entries {
			rec = redoEntry(rec, entries[i].Key, entries[i].Value)
		}
		var err error
		if seq, err = s.redo.append(rec); err != nil {
			return err
		}
	}
	if err := s.commitDecisions(entries); err != nil {
		if seq != 0 {
			if cerr := s.redo.cancel(seq); cerr != nil {
				s.log.Error("store: redo log: cancel a failed commit", "seq", seq, "err", cerr)
			}
		}
		return err
	}
	return nil
}

// commitDecisions sets and commits entries, in as many transactions as Badger needs.
func (s *Store) commitDecisions(entries []badger.Entry) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for i := range entries {
		e := &entries[i]
		err := txn.SetEntry(e)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("store: write decisions: %w", err)
			}
			txn = s.db.NewTransaction(true)
			err = txn.SetEntry(e)
		}
		if err != nil {
			return fmt.Errorf("store: write decision: %w", err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store: write decisions: %w", err)
	}
	return nil
}

// decisionSizeHint is an upper bound of the bytes writeDecisions lays out for rec (its two
// keys, its encoding and the index value), when its strings are shorter than 16 KiB.
func decisionSizeHint(r *DecisionRecord) int {
	n := 2*(1+2*3+len(r.Site)+len(r.ID)) + 8 + 8 // keys: ns, 3 length prefixes, ts; index value
	n += 1 + 9*3 + len(r.ID) + len(r.Session) + len(r.AnonymousID) + len(r.UserID) + len(r.Page) +
		len(r.Group) + len(r.Arm) + len(r.Fingerprint) + len(r.Reason)
	n += 10 + 16 + 4*10 + 8*len(r.Uplift) // ts, two floats, four uvarints, uplift
	for _, iv := range r.Interventions {
		n += 3 + len(iv)
	}
	return n
}

// appendDecisionKey appends decisionKey(site, ts, id).
func appendDecisionKey(b []byte, site string, ts int64, id string) []byte {
	b = append(b, nsDecisionLog)
	b = appendStr(b, site)
	b = appendTS(b, ts)
	return append(b, id...)
}

// linkExposure records that event eventID exposed decision decisionID (first exposure wins
// within a transaction; a later one overwrites, which is harmless: any exposure marks it).
func (c *chunk) linkExposure(site, decisionID, eventID string) error {
	return c.set(key(nsExposureLink, site, decisionID), []byte(eventID))
}

func decisionKey(site string, ts int64, id string) []byte {
	b := key(nsDecisionLog, site)
	b = appendTS(b, ts)
	return append(b, id...)
}

// Decisions calls fn for every logged decision of a site with fromTS <= TS < toTS in time
// order (toTS <= 0 means no upper bound). Decisions still in the write queue are not seen.
// fn must not keep rec after it returns.
func (s *Store) Decisions(ctx context.Context, site string, fromTS, toTS int64, fn func(*DecisionRecord) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: decisions: %w", err)
	}
	prefix := key(nsDecisionLog, site)
	start := appendTS(append([]byte(nil), prefix...), fromTS)
	var end []byte
	if toTS > 0 {
		end = appendTS(append([]byte(nil), prefix...), toTS)
	}
	return s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		var rec DecisionRecord
		for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store: decisions: %w", err)
			}
			item := it.Item()
			if end != nil && string(item.Key()[:len(end)]) >= string(end) {
				break
			}
			rec = DecisionRecord{Site: site}
			if err := item.Value(func(v []byte) error { return decodeDecision(v, &rec) }); err != nil {
				return err
			}
			if err := fn(&rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Decision returns one logged decision and whether an exposure event has named it
// (ErrNotFound when no such decision has been written yet).
func (s *Store) Decision(ctx context.Context, site, id string) (*DecisionRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("store: decision: %w", err)
	}
	var rec *DecisionRecord
	var exposed bool
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key(nsDecisionByID, site, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("store: decision %q of site %q: %w", id, site, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: decision: %w", err)
		}
		var ts int64
		if err := item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: decision index", ErrCorrupt)
			}
			ts = decodeTS(v)
			return nil
		}); err != nil {
			return err
		}
		item, err = txn.Get(decisionKey(site, ts, id))
		if err != nil {
			return fmt.Errorf("store: decision %q: %w", id, err)
		}
		rec = &DecisionRecord{Site: site}
		if err := item.Value(func(v []byte) error { return decodeDecision(v, rec) }); err != nil {
			return err
		}
		if exposed, err = exists(txn, key(nsExposureLink, site, id)); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return rec, exposed, nil
}

// appendDecision appends the v1 encoding of rec (everything but the site, which is in the
// key): version | strings id, session, anonymous id, user id, page, group, arm, fingerprint,
// reason | ts varint | probability, propensity float64 LE | versions uvarint | interventions
// count + strings | uplift count + float64 LE.
func appendDecision(b []byte, r *DecisionRecord) []byte {
	b = append(b, decisionCodecV1)
	for _, s := range [...]string{r.ID, r.Session, r.AnonymousID, r.UserID, r.Page, r.Group, r.Arm, r.Fingerprint, r.Reason} {
		b = appendStr(b, s)
	}
	b = binary.AppendVarint(b, r.TS)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Probability))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Propensity))
	b = binary.AppendUvarint(b, uint64(r.PropensityVersion))
	b = binary.AppendUvarint(b, uint64(r.UpliftVersion))
	b = binary.AppendUvarint(b, uint64(len(r.Interventions)))
	for _, s := range r.Interventions {
		b = appendStr(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Uplift)))
	for _, u := range r.Uplift {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(u))
	}
	return b
}

func decodeDecision(b []byte, r *DecisionRecord) error {
	if len(b) < 1 || b[0] != decisionCodecV1 {
		return fmt.Errorf("%w: decision codec version", ErrCorrupt)
	}
	b = b[1:]
	var err error
	for _, dst := range [...]*string{&r.ID, &r.Session, &r.AnonymousID, &r.UserID, &r.Page, &r.Group, &r.Arm, &r.Fingerprint, &r.Reason} {
		if *dst, b, err = readStr(b); err != nil {
			return fmt.Errorf("%w: decision field", ErrCorrupt)
		}
	}
	d := decoder{b: b}
	r.TS = d.varint()
	r.Probability = math.Float64frombits(d.u64())
	r.Propensity = math.Float64frombits(d.u64())
	r.PropensityVersion = int(d.uvarint())
	r.UpliftVersion = int(d.uvarint())
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		return fmt.Errorf("%w: decision interventions", ErrCorrupt)
	}
	r.Interventions = make([]string, n)
	for i := range r.Interventions {
		if r.Interventions[i], d.b, err = readStr(d.b); err != nil {
			return fmt.Errorf("%w: decision intervention", ErrCorrupt)
		}
	}
	n = d.uvarint()
	if d.bad || n*8 > uint64(len(d.b)) {
		return fmt.Errorf("%w: decision uplift", ErrCorrupt)
	}
	r.Uplift = nil
	if n > 0 {
		r.Uplift = make([]float64, n)
		for i := range r.Uplift {
			r.Uplift[i] = math.Float64frombits(d.u64())
		}
	}
	if d.bad {
		return fmt.Errorf("%w: decision record", ErrCorrupt)
	}
	return nil
}
