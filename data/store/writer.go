package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// AppendResult reports what Append did with each event of a batch.
type AppendResult struct {
	Stored     int      // newly written to the log
	Duplicates int      // event_id already seen for this site: not stored again
	Unlogged   int      // no analytics consent: folded into the live session only, not logged
	Sessions   []string // server session id per input event (index-aligned)
}

// Chunk limits: one Badger transaction holds at most this many events / value bytes, well
// under Badger's batch limits (15% of the 32 MB memtable) even with large session states.
const (
	maxChunkEvents = 1000
	maxChunkBytes  = 1 << 20
)

const (
	reqQueued int32 = iota
	reqStarted
	reqCanceled
)

type request struct {
	ctx   context.Context
	site  string
	evs   []features.Event
	state atomic.Int32
	res   AppendResult
	err   error
	done  chan struct{} // nil for a decision: nobody waits

	decision *DecisionRecord // a LogDecision request (decisions.go) instead of events
	grp      *groupAck       // the group's acknowledgement, when its commit is being synced
}

// groupAck acknowledges a committed group once both the fsync covering it (syncer) and its
// publication to the caches (writer, settle) are done, whichever finishes last: the fsync
// starts as soon as Badger has applied the commit, while the writer may still be building
// the next chunk, and an acknowledged batch is both durable and visible to reads.
type groupAck struct {
	reqs    []*request
	pending atomic.Int32 // 2, then 1, then 0: the last to finish acknowledges
	err     error        // the fsync's error (set by the syncer before its decrement)
}

func (g *groupAck) finish() {
	if g.pending.Add(-1) == 0 {
		ack(g.reqs, g.err)
	}
}

// Append stores a batch of events for a site. When it returns nil the events are on disk
// (fsync'd) unless Options.NoSync. Concurrent callers share one fsync (group commit). It sets
// ev.Session on every event. A full queue fails fast with ErrOverloaded; a ctx that ends
// before the writer starts the batch removes it (nothing written); once started, Append waits
// for the outcome. Events are processed in slice order.
func (s *Store) Append(ctx context.Context, site string, evs []features.Event) (AppendResult, error) {
	if len(evs) == 0 {
		return AppendResult{Sessions: []string{}}, nil
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, fmt.Errorf("store: append: %w", err)
	}
	r := &request{ctx: ctx, site: site, evs: evs, done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return AppendResult{}, ErrClosed
	case s.pending > 0 && s.pending+len(evs) > s.opts.QueueLimit:
		s.mu.Unlock()
		return AppendResult{}, ErrOverloaded
	}
	s.queue = append(s.queue, r)
	s.pending += len(evs)
	s.mu.Unlock()
	s.signal()

	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCanceled) {
			return AppendResult{}, fmt.Errorf("store: append: %w", ctx.Err())
		}
		<-r.done
	}
	if r.err != nil {
		return AppendResult{}, r.err
	}
	return r.res, nil
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writer is the single goroutine that writes. It drains the whole queue into one group,
// starts its commit and goes on with the next group while Badger applies the commit; when
// the commit is done it publishes the group to the caches and hands it to the syncer, which
// fsyncs while the writer goes on (pipelined group commit).
func (s *Store) writer() {
	defer close(s.synced)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.pending = 0
		closed := s.closed
		s.mu.Unlock()
		if len(q) == 0 {
			if s.w.inflight != nil {
				_ = s.settle() // an error is acknowledged to its group
				continue
			}
			// Idle: nothing queued and no commit in flight (a settled commit's group is
			// already in s.synced).
			if s.writing.Swap(false) {
				select { // wake a syncer waiting for the writer's next commits
				case s.idle <- struct{}{}:
				default:
				}
			}
			if closed {
				return
			}
			<-s.wake
			continue
		}
		s.writing.Store(true)
		s.writeGroup(q)
	}
}

// writerState is touched only by the writer goroutine.
type writerState struct {
	recentIDs *lruish[string]   // dedupe key -> server session of unlogged events (in memory only)
	clients   *lruish[string]   // client key -> current server session
	visitors  *lruish[struct{}] // visitor keys known to exist
	// sessTS holds, by visitor-session index prefix (ns|site|anonymous_id), the start time
	// of every committed session of visitors first seen by this process, while each has at
	// most maxCachedSessions (publish keeps it): computeHistory needs no iterator for them.
	sessTS   *lruish[[]int64]
	counters map[string]siteCounters // committed counters per site
	seen     *seenFilter             // committed dedupe and visitor keys (seen.go)
	buf      []byte
	vkBuf    []byte // noneCommitted's visitor key

	// pre holds the filter hash of each event's dedupe key of the batch being added and the
	// filter's answer for it as of filter generation preGen (precheck).
	pre    []precheckedID
	preGen uint64

	// inflight is the chunk whose commit Badger is applying (at most one); the chunk being
	// filled reads through it (its parent) until it is settled.
	inflight *inflight
	// nextTxn and nextSnap, when set, were opened just before inflight's commit started, so
	// their read timestamp does not wait for it: the next chunk takes them while inflight is
	// unsettled (and reads inflight's writes from its overlay). settle discards them.
	nextTxn, nextSnap *badger.Txn

	// spare is the last chunk settled without error, whose memory the next newChunk reuses
	// (reset); nil when none.
	spare *chunk

	chunkEvents int // events per chunk: maxChunkEvents (tests lower it to exercise chunk chains)
	// testPoisonRecycled makes reset overwrite the memory it reuses (tests only).
	testPoisonRecycled bool
	reused             int // chunks reused (tests)
	// testFailCommit, when set, is asked before each commit; an error fails that commit as
	// Badger would, asynchronously (tests only).
	testFailCommit func() error
}

// inflight is a chunk being committed by Badger.
type inflight struct {
	c    *chunk
	reqs []*request // its group, when c is the group's last chunk; nil for an earlier chunk
	grp  *groupAck  // reqs' acknowledgement (nil without reqs or under NoSync)
	seq  uint64     // the chunk's redo log record (0: none)
	done chan error // the commit's outcome (buffered)
}

func newWriterState(n int) writerState {
	return writerState{
		recentIDs: newLruish[string](4 * n),
		clients:   newLruish[string](n),
		visitors:  newLruish[struct{}](n),
		sessTS:    newLruish[[]int64](n),
		counters:  make(map[string]siteCounters),

		chunkEvents: maxChunkEvents,
	}
}

// liveSession is a session being modified in the current chunk.
type liveSession struct {
	id    string
	idb   []byte // id as bytes: the value of its events' dedupe keys (set on first use)
	key   []byte
	rec   sessionRecord
	state features.State
}

// idKey is a dedupe key (site, event id) as a map key that needs no allocation.
type idKey struct{ site, id string }

// unloggedID is an unlogged event's dedupe key and server session.
type unloggedID struct{ key, session string }

// The chunk's keys and values are cut from blocks of about chunkBlockPerEvent bytes per
// expected event, within [chunkBlockMin, chunkBlockMax].
const (
	chunkBlockPerEvent = 160
	chunkBlockMin      = 4 << 10
	chunkBlockMax      = 32 << 10

	// Entries (set) come in slabs of about 2.5 per expected event (event, dedupe key, and
	// the session keys), within [chunkEntsMin, chunkEntsMax].
	chunkEntsMin = 16
	chunkEntsMax = 256
)

// chunk is the overlay of one Badger transaction: nothing in it reaches the shared caches
// before the transaction has committed.
type chunk struct {
	s        *Store
	parent   *chunk      // the previous chunk, committed or in flight when this one started (nil: none)
	txn      *badger.Txn // the write transaction
	snap     *badger.Txn // read-only snapshot of what was committed before the chunk (parent excluded)
	idx      map[string][]idxEntry
	events   int
	bytes    int
	sessions map[string]*liveSession
	clients  map[string]string
	ids      map[idKey]string // server session of every event of the chunk
	unlogged []unloggedID     // the chunk's unlogged events
	mem      []byte           // the current block of keys and values (alloc)
	block    int              // size of the next block
	ents     []badger.Entry   // the current slab of the entries handed to Badger (set)
	entBlock int              // size of the next slab
	visitors map[string]struct{}
	counters map[string]*siteCounters
	seen     []uint64          // filter hashes of the dedupe and visitor keys written
	vals     map[string][]byte // encoded session records by session key (set by prepare)

	// The blocks and slabs cut so far, and those of a reused chunk not cut yet (reset).
	blocks, freeBlocks [][]byte
	slabs, freeSlabs   [][]badger.Entry
	freeLS             []*liveSession // a reused chunk's sessions (newLiveSession)

	published bool // settled and published to the caches (publish)

	// redo is the chunk's redo log record (redo.go), written before its commit starts;
	// bigValue says an entry's value goes to Badger's value log, which the fsync must sync
	// too (values of Options.Badger's ValueThreshold and more).
	redo     []byte
	bigValue bool

	// The session of the chunk's last event, by client id: a batch's events mostly
	// come in runs of one session.
	lastSite, lastClient string
	last                 *liveSession
}

// newChunk starts a chunk for about events events (a size hint for its maps: presizing
// them for maxChunkEvents costs more than the chunk's work when groups are small).
//
// While a commit is in flight, the chunk's transactions are the ones opened just before it
// started (nextTxn, nextSnap): they do not see the in-flight chunk's writes, so every lookup
// checks that parent's overlay first. The overlay holds every key the parent wrote that the
// writer reads back (dedupe, client, session, visitor and index keys, counters).
func (s *Store) newChunk(events int) *chunk {
	events = min(max(events, 1), maxChunkEvents)
	var parent *chunk
	txn, snap := s.w.nextTxn, s.w.nextSnap
	s.w.nextTxn, s.w.nextSnap = nil, nil
	if f := s.w.inflight; f != nil && txn != nil {
		parent = f.c
	} else {
		if txn != nil { // cannot happen: settle discards them; keep the invariant anyway
			txn.Discard()
			snap.Discard()
		}
		txn, snap = s.db.NewTransaction(true), s.db.NewTransaction(false)
	}
	c := s.w.spare
	s.w.spare = nil
	if c != nil {
		c.reset(s.w.testPoisonRecycled)
		s.w.reused++
	} else {
		c = &chunk{
			idx:      make(map[string][]idxEntry),
			sessions: make(map[string]*liveSession, events/8),
			clients:  make(map[string]string, events/8),
			ids:      make(map[idKey]string, events),
			visitors: make(map[string]struct{}),
			counters: make(map[string]*siteCounters),
		}
	}
	c.s, c.parent, c.txn, c.snap = s, parent, txn, snap
	c.block = min(max(events*chunkBlockPerEvent, chunkBlockMin), chunkBlockMax)
	c.entBlock = min(max(events*5/2, chunkEntsMin), chunkEntsMax)
	return c
}

// reset empties a settled chunk for reuse as a new one (newChunk): its maps keep their
// room, its blocks and slabs are cut again before any new one is allocated (a fresh map or
// block costs its allocation, the page faults of its memory and the GC).
//
// Only a chunk whose commit Badger has applied (Badger keeps the keys, values and entries
// handed to Set until then) and which the caches no longer need (publish copied what they
// keep: strings and encoded session records, none cut from a block) is reused: settled
// stashes it in writerState.spare, and only newChunk takes it, when no chunk is being built
// on it as a parent (launch clears parent before the next newChunk). poison overwrites the
// reused memory (tests: any reader left would see it).
func (c *chunk) reset(poison bool) {
	clear(c.idx)
	for _, ls := range c.sessions {
		if poison {
			*ls = liveSession{id: string(poisonKey), key: poisonKey, idb: poisonKey}
		}
		c.freeLS = append(c.freeLS, ls)
	}
	clear(c.sessions)
	clear(c.clients)
	clear(c.ids)
	clear(c.visitors)
	clear(c.counters)
	clear(c.vals)
	clear(c.unlogged)
	c.unlogged = c.unlogged[:0]
	c.seen = c.seen[:0]
	c.events, c.bytes = 0, 0
	c.published = false
	c.redo, c.bigValue = c.redo[:0], false
	c.lastSite, c.lastClient, c.last = "", "", nil
	for _, b := range c.blocks {
		if poison {
			b = b[:cap(b)]
			for i := range b {
				b[i] = 0xA5
			}
		}
		c.freeBlocks = append(c.freeBlocks, b[:0])
	}
	clear(c.blocks)
	c.blocks, c.mem = c.blocks[:0], nil
	for _, e := range c.slabs {
		e = e[:cap(e)]
		clear(e) // Badger's keys (with their timestamps) are not kept alive
		if poison {
			for i := range e {
				e[i] = badger.Entry{Key: poisonKey, Value: poisonKey}
			}
		}
		c.freeSlabs = append(c.freeSlabs, e[:0])
	}
	clear(c.slabs)
	c.slabs, c.ents = c.slabs[:0], nil
}

// poisonKey is what reset writes into the reused entries under writerState.testPoisonRecycled.
var poisonKey = []byte("\xFFpoisoned: a recycled entry was used")

func (s *Store) writeGroup(q []*request) {
	if s.testHookGroup != nil {
		s.testHookGroup()
	}
	active := q[:0]
	for _, r := range q {
		if r.state.CompareAndSwap(reqQueued, reqStarted) {
			active = append(active, r)
		}
	}
	if len(active) == 0 {
		return
	}
	if s.abort.Load() {
		for _, r := range active {
			r.err = ErrClosed
			if r.done != nil {
				close(r.done)
			}
		}
		return
	}
	if onlyDecisions(active) { // decisions.go: no chunk overlay, no fsync of its own
		err := s.settle()
		if err == nil {
			err = s.writeDecisions(active)
		}
		if err != nil {
			s.log.Error("store: write group failed", "err", err, "batches", len(active))
		}
		ack(active, err)
		return
	}
	if err := s.processGroup(active); err != nil {
		s.log.Error("store: write group failed", "err", err, "batches", len(active))
		ack(active, err)
	}
	// Otherwise the group's last chunk is in flight: settle acknowledges the group.
}

// launch prepares chunk c, waits for the commit in flight (c's parent) to settle, and starts
// c's commit without waiting for it. reqs is c's group when c is its last chunk (settle hands
// it to the syncer), else nil. On error c is discarded and nothing of it is published.
func (s *Store) launch(c *chunk, reqs []*request) error {
	if err := c.prepare(); err != nil {
		c.discard()
		return err
	}
	if err := s.settle(); err != nil {
		c.discard()
		// c was built on the failed chunk's overlay: it must not be committed either.
		return fmt.Errorf("store: an earlier commit of the writer failed: %w", err)
	}
	// Write-ahead: the record is in the log before Badger has any of the commit.
	var seq uint64
	if len(c.redo) > 0 {
		err := s.redo.rotateIfFull()
		if err == nil {
			seq, err = s.redo.append(c.redo)
		}
		if err != nil {
			c.discard()
			return err
		}
		c.redo = c.redo[:0]
		if c.bigValue {
			s.vlogDirty.Store(true)
		}
	}
	c.parent = nil
	c.snap.Discard()
	// Open the next chunk's transactions before the commit starts: their read timestamp
	// does not wait for it (Badger's readTs waits for every commit in flight).
	s.w.nextTxn, s.w.nextSnap = s.db.NewTransaction(true), s.db.NewTransaction(false)
	f := &inflight{c: c, reqs: reqs, seq: seq, done: make(chan error, 1)}
	if len(reqs) > 0 && !s.opts.NoSync {
		f.grp = &groupAck{reqs: reqs}
		f.grp.pending.Store(2)
		reqs[0].grp = f.grp
	}
	s.w.inflight = f
	if s.w.testFailCommit != nil {
		if err := s.w.testFailCommit(); err != nil {
			c.txn.Discard()
			f.done <- err
			return nil
		}
	}
	c.txn.CommitWith(func(err error) {
		if err == nil && f.grp != nil {
			s.synced <- reqs // the fsync need not wait for the writer (settle publishes)
		}
		f.done <- err // after the send: settle's return orders it before close(s.synced)
	})
	return nil
}

// settle waits for the commit in flight, if any. On success it publishes the chunk to the
// caches and, if the chunk ends its group, hands the group to the syncer (or acknowledges
// it under NoSync); on failure it acknowledges the error to the group and returns it.
func (s *Store) settle() error {
	if s.w.nextTxn != nil {
		s.w.nextTxn.Discard()
		s.w.nextSnap.Discard()
		s.w.nextTxn, s.w.nextSnap = nil, nil
	}
	f := s.w.inflight
	if f == nil {
		return nil
	}
	return s.settled(<-f.done)
}

// settleIfDone settles the commit in flight if Badger has finished it, without waiting:
// the writer calls it between batches so that a group is published (and, with its fsync
// done, acknowledged) without waiting for the writer to finish the next chunk. An error
// is returned as by settle.
func (s *Store) settleIfDone() error {
	f := s.w.inflight
	if f == nil {
		return nil
	}
	select {
	case err := <-f.done:
		return s.settled(err)
	default:
		return nil
	}
}

// settled completes settle once the in-flight commit's outcome is known.
func (s *Store) settled(err error) error {
	if s.w.nextTxn != nil {
		s.w.nextTxn.Discard()
		s.w.nextSnap.Discard()
		s.w.nextTxn, s.w.nextSnap = nil, nil
	}
	f := s.w.inflight
	s.w.inflight = nil
	if err != nil {
		err = fmt.Errorf("store: commit: %w", err)
		s.log.Error("store: write group failed", "err", err)
		if f.seq != 0 {
			// Replay must not apply what Badger did not. If this fails too, the log is
			// broken (no more records: every later write fails) or the record stays: a
			// crash before the next clean Close would then replay it.
			if cerr := s.redo.cancel(f.seq); cerr != nil {
				s.log.Error("store: redo log: cancel a failed commit", "seq", f.seq, "err", cerr)
			}
		}
	} else {
		f.c.publish()
		// Badger is done with the chunk and the caches hold nothing of its memory: the next
		// chunk may reuse it (the chunk being built, if any, may still read this one as its
		// parent, but the next newChunk follows its launch, which drops that link).
		s.w.spare = f.c
	}
	switch {
	case f.reqs == nil:
	case err != nil:
		ack(f.reqs, err) // never handed to the syncer
	case f.grp == nil: // NoSync
		ack(f.reqs, nil)
	default:
		f.grp.finish()
	}
	return err
}

// syncer acknowledges committed groups after one fsync covering all of them (syncLogged):
// an fsync of the redo log that starts after a group's commit makes that group durable.
//
// Group commit: while the writer is busy with more batches (their commit is coming), the
// syncer waits up to Options.SyncDelay for those commits before it syncs, so that one fsync
// covers them too. A sync costs a fixed part plus its pages. In `nudge bench ingest` a
// 2 ms delay raises the events per fsync from about 510 to 700. When the fsync was Badger's
// msync, that saved 1-2 µs of CPU per event (before the writer's later CPU savings; after
// them, within the noise); with the redo log's cheaper fdatasync it costs throughput
// instead (about 8%, see DefaultSyncDelay), so it is off by default. When the writer is idle
// nothing more is coming: the sync starts at once, so a lone batch never waits for the delay.
func (s *Store) syncer() {
	defer close(s.done)
	var timer *time.Timer
	for g := range s.synced {
		groups := [][]*request{g}
		if d := s.opts.SyncDelay; d > 0 && s.writing.Load() {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
		wait:
			for s.writing.Load() {
				select {
				case g, ok := <-s.synced:
					if !ok {
						break wait
					}
					groups = append(groups, g)
				case <-s.idle: // the loop checks writing again
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
	drain:
		for {
			select {
			case g, ok := <-s.synced:
				if !ok {
					break drain
				}
				groups = append(groups, g)
			default:
				break drain
			}
		}
		s.syncs.Add(1)
		var err error
		if serr := s.syncLogged(); serr != nil {
			err = fmt.Errorf("store: sync: %w", serr)
			s.log.Error("store: sync failed", "err", serr)
		}
		for _, g := range groups {
			if ga := g[0].grp; ga != nil {
				ga.err = err
				ga.finish()
			} else {
				ack(g, err)
			}
		}
	}
}

// syncLogged makes every commit applied so far durable: an fdatasync of the redo log (and a
// Sync of Badger's value log if a value went there). In memory, it is DB.Sync (a no-op).
func (s *Store) syncLogged() error {
	if s.redo == nil {
		return s.db.Sync()
	}
	if s.vlogDirty.Swap(false) {
		s.vlogSyncs.Add(1)
		if err := s.db.Sync(); err != nil {
			return err
		}
	}
	return s.redo.sync()
}

// ack completes requests; err (if any) fails those that have no error of their own.
func ack(reqs []*request, err error) {
	for _, r := range reqs {
		if err != nil && r.err == nil {
			r.err = err
		}
		if r.done != nil {
			close(r.done)
		}
	}
}

func (s *Store) processGroup(reqs []*request) (err error) {
	left := 0 // events (or decisions) not yet added: the size hint of the next chunk
	for _, r := range reqs {
		left += max(len(r.evs), 1)
	}
	c := s.newChunk(left)
	defer func() {
		if c != nil {
			c.discard()
		}
	}()
	for _, r := range reqs {
		if err := s.settleIfDone(); err != nil {
			return fmt.Errorf("store: an earlier commit of the writer failed: %w", err)
		}
		if r.decision != nil { // LogDecision (decisions.go)
			if c.events >= s.w.chunkEvents || c.bytes >= maxChunkBytes {
				next := c
				c = nil
				if err := s.launch(next, nil); err != nil {
					return err
				}
				c = s.newChunk(left)
			}
			if err := c.addDecision(r.decision); err != nil {
				return err
			}
			left--
			continue
		}
		sc, serr := s.schema(r.site)
		if serr != nil {
			r.err = serr
			continue
		}
		r.res.Sessions = make([]string, len(r.evs))
		s.w.precheck(r.site, r.evs)
		for i := range r.evs {
			if c.events >= s.w.chunkEvents || c.bytes >= maxChunkBytes {
				next := c
				c = nil
				if err := s.launch(next, nil); err != nil {
					return err
				}
				c = s.newChunk(left)
			}
			if err := c.add(r, sc, i); err != nil {
				return err
			}
			left--
		}
	}
	last := c
	c = nil
	return s.launch(last, reqs)
}

// newLiveSession returns a new session of the chunk: a zeroed one left by the chunk's
// previous use (reset) if any. A liveSession is the chunk's own: publish copies its encoded
// record (vals) and a child chunk decodes that, never the struct.
func (c *chunk) newLiveSession(id string, key []byte) *liveSession {
	if k := len(c.freeLS); k > 0 {
		ls := c.freeLS[k-1]
		c.freeLS[k-1] = nil
		c.freeLS = c.freeLS[:k-1]
		*ls = liveSession{id: id, key: key}
		return ls
	}
	return &liveSession{id: id, key: key}
}

// precheckedID is an event's dedupe key hash and the seen filter's answer for it.
type precheckedID struct {
	hash  uint64
	maybe bool
}

// precheck hashes the dedupe keys of a batch's events and asks the seen filter about all
// of them before the batch is added, in a loop of independent lookups: the filter is
// megabytes of random reads, and its cache (and TLB) misses overlap there, where one lookup
// per event among the event's other work pays each one in full. add uses the answers while
// the filter has learnt no key since (a chunk launched within the batch feeds it).
func (w *writerState) precheck(site string, evs []features.Event) {
	w.pre = slices.Grow(w.pre[:0], len(evs))[:len(evs)]
	kb := w.buf[:0]
	for i := range evs {
		kb = appendKey2(kb[:0], nsDedupe, site, evs[i].EventID)
		w.pre[i].hash = w.seen.hash(kb)
	}
	w.buf = kb
	for i := range w.pre {
		w.pre[i].maybe = w.seen.mayContain(w.pre[i].hash)
	}
	w.preGen = w.seen.gen
}

// alloc returns an empty slice with capacity n cut from the chunk's current block: the keys
// and values handed to Badger, which keeps them until the commit is applied.
func (c *chunk) alloc(n int) []byte {
	if len(c.mem)+n > cap(c.mem) {
		if k := len(c.freeBlocks); k > 0 && cap(c.freeBlocks[k-1]) >= n {
			c.mem = c.freeBlocks[k-1]
			c.freeBlocks[k-1] = nil
			c.freeBlocks = c.freeBlocks[:k-1]
		} else {
			c.mem = make([]byte, 0, max(n, c.block))
			c.block = chunkBlockMax
		}
		if cap(c.mem) <= chunkBlockMax { // an outsized block (a huge key or value) is not kept
			c.blocks = append(c.blocks, c.mem)
		}
	}
	m := len(c.mem)
	c.mem = c.mem[:m+n]
	return c.mem[m : m : m+n]
}

// key2 is key(ns, a, b) cut from the chunk's block.
func (c *chunk) key2(ns byte, a, b string) []byte {
	k := c.alloc(1 + uvarintLen(len(a)) + len(a) + uvarintLen(len(b)) + len(b))
	k = append(k, ns)
	k = appendStr(k, a)
	return appendStr(k, b)
}

// sessionByTimeKey is sessionByTimeKey(site, ts, session) cut from the chunk's block.
func (c *chunk) sessionByTimeKey(site string, ts int64, session string) []byte {
	k := c.alloc(1 + uvarintLen(len(site)) + len(site) + 8 + len(session))
	k = append(k, nsSessionByTime)
	k = appendStr(k, site)
	k = appendTS(k, ts)
	return append(k, session...)
}

// strBytes returns s as bytes cut from the chunk's block.
func (c *chunk) strBytes(s string) []byte { return append(c.alloc(len(s)), s...) }

// eventKey is eventKey(site, session, ts, eventID) cut from the chunk's block.
func (c *chunk) eventKey(site, session string, ts int64, eventID string) []byte {
	k := c.alloc(1 + uvarintLen(len(site)) + len(site) + uvarintLen(len(session)) + len(session) + 8 + len(eventID))
	k = append(k, nsEvent)
	k = appendStr(k, site)
	k = appendStr(k, session)
	k = appendTS(k, ts)
	return append(k, eventID...)
}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

func (c *chunk) set(k, v []byte) error {
	c.bytes += len(k) + len(v)
	if c.s.redo != nil {
		c.redo = redoEntry(c.redo, k, v)
		c.bigValue = c.bigValue || int64(len(v)) >= c.s.vlogThreshold
	}
	if len(c.ents) == cap(c.ents) {
		if k := len(c.freeSlabs); k > 0 {
			c.ents = c.freeSlabs[k-1]
			c.freeSlabs[k-1] = nil
			c.freeSlabs = c.freeSlabs[:k-1]
		} else {
			c.ents = make([]badger.Entry, 0, c.entBlock)
			c.entBlock = chunkEntsMax
		}
		c.slabs = append(c.slabs, c.ents)
	}
	// badger.NewEntry(k, v), cut from the chunk's slab: Badger keeps the entry until the
	// commit is applied; the slab is reused only after that (reset).
	c.ents = append(c.ents, badger.Entry{Key: k, Value: v})
	if err := c.txn.SetEntry(&c.ents[len(c.ents)-1]); err != nil {
		return fmt.Errorf("store: write: %w", err)
	}
	return nil
}

// setIdx writes an index entry prefix|ts|tail and remembers it for history computations
// within the chunk.
func (c *chunk) setIdx(prefix []byte, ts int64, tail string, val []byte) error {
	k := append(c.alloc(len(prefix)+8+len(tail)), prefix...)
	k = append(appendTS(k, ts), tail...)
	if err := c.set(k, val); err != nil {
		return err
	}
	p := string(prefix)
	c.idx[p] = append(c.idx[p], idxEntry{key: k, ts: ts, val: val})
	return nil
}

// setIdxSeen is setIdx for an index whose prefixes the seen filter tracks.
func (c *chunk) setIdxSeen(prefix []byte, ts int64, tail string, val []byte) error {
	if _, ok := c.idx[string(prefix)]; !ok {
		c.seen = append(c.seen, c.s.w.seen.hash(prefix))
	}
	return c.setIdx(prefix, ts, tail, val)
}

// discard releases the chunk's transactions.
func (c *chunk) discard() {
	c.txn.Discard()
	c.snap.Discard()
}

// dedupe looks an event id up: overlay, recent cache, seen filter (maybe is its answer for
// dk: a definite "never written" ends it), then Badger.
func (c *chunk) dedupe(ik idKey, dk []byte, maybe bool) (string, bool, error) {
	if sess, ok := c.ids[ik]; ok {
		return sess, true, nil
	}
	if p := c.parent; p != nil {
		if sess, ok := p.ids[ik]; ok {
			return sess, true, nil
		}
	}
	if sess, ok := c.s.w.recentIDs.getBytes(dk); ok {
		return sess, true, nil
	}
	if !maybe {
		return "", false, nil
	}
	item, err := c.txn.Get(dk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: dedupe lookup: %w", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return "", false, fmt.Errorf("store: dedupe lookup: %w", err)
	}
	return string(v), true, nil
}

func (c *chunk) siteCounters(site string) (*siteCounters, error) {
	if sc, ok := c.counters[site]; ok {
		return sc, nil
	}
	var sc siteCounters
	var ok bool
	if c.parent != nil {
		var p *siteCounters
		if p, ok = c.parent.counters[site]; ok {
			sc = *p
		}
	}
	if !ok {
		sc, ok = c.s.w.counters[site]
	}
	if !ok {
		var err error
		if sc, err = readCounters(c.txn, site); err != nil {
			return nil, err
		}
	}
	cp := sc
	c.counters[site] = &cp
	return &cp, nil
}

// currentSession returns the client id's current server session, or nil for a new client id.
func (c *chunk) currentSession(site, clientID string, sc *features.Schema) (*liveSession, error) {
	ck := key(nsClient, site, clientID)
	id, ok := c.clients[string(ck)]
	if !ok && c.parent != nil {
		id, ok = c.parent.clients[string(ck)]
	}
	if !ok {
		id, ok = c.s.w.clients.getBytes(ck)
	}
	if !ok && !c.s.w.seen.mayContain(c.s.w.seen.hash(ck)) {
		return nil, nil // a client id never written
	}
	if !ok {
		item, err := c.txn.Get(ck)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("store: client session lookup: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("store: client session lookup: %w", err)
		}
		id = string(v)
		c.s.w.clients.put(string(ck), id)
	}
	return c.loadSession(site, id, sc)
}

// loadSession returns the session in the overlay, loading it from the cache or Badger.
func (c *chunk) loadSession(site, id string, sc *features.Schema) (*liveSession, error) {
	sk := key(nsSession, site, id)
	if ls, ok := c.sessions[string(sk)]; ok {
		return ls, nil
	}
	var val []byte
	ok := false
	if c.parent != nil {
		val, ok = c.parent.vals[string(sk)]
	}
	if !ok {
		val, ok = c.s.sessions.getBytes(sk)
	}
	if !ok {
		item, err := c.txn.Get(sk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, fmt.Errorf("store: session %q of a client pointer: %w", id, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("store: session lookup: %w", err)
		}
		if val, err = item.ValueCopy(nil); err != nil {
			return nil, fmt.Errorf("store: session lookup: %w", err)
		}
		c.s.sessions.put(string(sk), val)
	}
	ls := c.newLiveSession(id, sk)
	if err := decodeSession(val, &ls.rec); err != nil {
		return nil, err
	}
	if ls.rec.Fingerprint == sc.Fingerprint {
		if err := ls.state.UnmarshalBinary(ls.rec.State); err != nil {
			return nil, fmt.Errorf("store: session %q state: %w", id, err)
		}
	} else {
		// The site's schema changed: rebuild the state from the logged events.
		ls.state = sc.NewState(ls.rec.Hist)
		evs, err := c.readEvents(site, id)
		if err != nil {
			return nil, err
		}
		for i := range evs {
			sc.Fold(&ls.state, &evs[i])
		}
		ls.rec.Fingerprint = sc.Fingerprint
	}
	ls.rec.State = nil
	c.sessions[string(sk)] = ls
	return ls, nil
}

// readEvents reads a session's logged events (a rebuild after a schema change, rare). The
// chunk's transaction does not see an in-flight parent's events: wait for it and read
// from a fresh snapshot then (the chunk itself has written no event of the session yet).
func (c *chunk) readEvents(site, id string) ([]features.Event, error) {
	if c.parent == nil {
		return readEvents(c.txn, site, id)
	}
	if err := c.s.settle(); err != nil {
		return nil, fmt.Errorf("store: an earlier commit of the writer failed: %w", err)
	}
	txn := c.s.db.NewTransaction(false)
	defer txn.Discard()
	return readEvents(txn, site, id)
}

// noneCommitted reports that no committed key has the per-visitor prefix: conversions or
// links by anonymous id, per the seen filter; sessions by anonymous id, when the visitor's
// visitors-seen key was not committed (see below); false ("maybe") for other namespaces.
//
// Every indexed session writes its ns|site|anonymous_id visitor-session entry in the same
// transaction as the visitor key of ns|site|anonymous_id (newSession, when not known yet)
// or after it, and neither is ever deleted: a visitor key not committed before the chunk's
// snapshot (first written by the chunk or its in-flight parent, or absent from the filter)
// means that the snapshot holds none of the visitor's sessions. A returning visitor whose
// earlier sessions are all in the chunk or its parent then needs no Badger iterator.
func (c *chunk) noneCommitted(prefix []byte) bool {
	w := &c.s.w
	switch ns := prefix[0]; {
	case seenPrefixNS(ns):
		return !w.seen.mayContain(w.seen.hash(prefix))
	case ns == nsVisitorSess:
		// The visitor key: the same site and anonymous id under nsVisitor.
		vk := append(c.s.w.vkBuf[:0], prefix...)
		vk[0] = nsVisitor
		c.s.w.vkBuf = vk
		if _, ok := c.visitors[string(vk)]; ok {
			return true
		}
		if p := c.parent; p != nil {
			if _, ok := p.visitors[string(vk)]; ok {
				return true
			}
		}
		return !w.seen.mayContain(w.seen.hash(vk))
	}
	return false
}

// maxCachedSessions bounds the session start times writerState.sessTS keeps per visitor.
const maxCachedSessions = 32

// committedSessions returns the start times of the committed sessions of a visitor-session
// index prefix as of the chunk's snapshot, when writerState.sessTS has them. The cache holds
// every published chunk; the snapshot every chunk settled before the parent's launch, that
// is the same ones unless the parent has been settled (and published) since: then the cache
// is ahead of the snapshot (and of the parent's overlay, which computeHistory adds), and
// the answer is "unknown".
func (c *chunk) committedSessions(prefix []byte) ([]int64, bool) {
	if p := c.parent; p != nil && p.published {
		return nil, false
	}
	return c.s.w.sessTS.getBytes(prefix)
}

// visitorKnown reports whether an anonymous id has any indexed session (committed or in the
// current transaction).
func (c *chunk) visitorKnown(vk []byte) (bool, error) {
	if _, ok := c.visitors[string(vk)]; ok {
		return true, nil
	}
	if p := c.parent; p != nil {
		if _, ok := p.visitors[string(vk)]; ok {
			return true, nil
		}
	}
	if _, ok := c.s.w.visitors.getBytes(vk); ok {
		return true, nil
	}
	if !c.s.w.seen.mayContain(c.s.w.seen.hash(vk)) {
		return false, nil
	}
	_, err := c.txn.Get(vk)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: visitor lookup: %w", err)
	}
	c.s.w.visitors.put(string(vk), struct{}{})
	return true, nil
}

// newSession starts server session id at ev, computing the visitor history as of ev.TS.
func (c *chunk) newSession(site, id string, visit int, ev *features.Event, sc *features.Schema, cnt *siteCounters) (*liveSession, error) {
	anon := ev.AnonymousID
	vk := c.key2(nsVisitor, site, anon)
	known, err := c.visitorKnown(vk)
	if err != nil {
		return nil, err
	}
	var hist features.VisitorHistory
	if known {
		src := historySource{txn: c.snap, overlay: c.idx, none: c.noneCommitted, sessions: c.committedSessions}
		if c.parent != nil {
			src.parent = c.parent.idx
		}
		if hist, err = computeHistory(src, site, anon, ev.TS); err != nil {
			return nil, err
		}
	}
	ls := c.newLiveSession(id, c.key2(nsSession, site, id))
	ls.idb = c.strBytes(id)
	ls.rec = sessionRecord{
		Client: ev.SessionID, Anon: anon, Fingerprint: sc.Fingerprint, Visit: visit,
		StartTS: ev.TS, LastTS: ev.TS, HistTS: ev.TS, Hist: hist,
	}
	ls.state = sc.NewState(hist)
	if ev.Consent {
		ls.rec.Indexed = true
		if err := c.set(c.sessionByTimeKey(site, ev.TS, id), nil); err != nil {
			return nil, err
		}
		if err := c.setIdx(c.key2(nsVisitorSess, site, anon), ev.TS, id, nil); err != nil {
			return nil, err
		}
		if !known {
			if err := c.set(vk, appendTS(c.alloc(8), ev.TS)); err != nil {
				return nil, err
			}
			c.visitors[string(vk)] = struct{}{}
			c.seen = append(c.seen, c.s.w.seen.hash(vk))
			cnt.Visitors++
		}
		cnt.Sessions++
	}
	ck := c.key2(nsClient, site, ev.SessionID)
	if err := c.set(ck, ls.idb); err != nil {
		return nil, err
	}
	if visit == 1 {
		c.seen = append(c.seen, c.s.w.seen.hash(ck))
	}
	c.clients[string(ck)] = id
	c.sessions[string(ls.key)] = ls
	return ls, nil
}

// add processes event i of r.
func (c *chunk) add(r *request, sc *features.Schema, i int) error {
	ev := &r.evs[i]
	site := r.site
	c.events++
	cnt, err := c.siteCounters(site)
	if err != nil {
		return err
	}
	ik := idKey{site, ev.EventID}
	dk := c.key2(nsDedupe, site, ev.EventID)
	w := &c.s.w
	dh, maybe := w.pre[i].hash, w.pre[i].maybe // precheck's, for r
	if w.seen.gen != w.preGen {                // the filter has learnt keys since
		maybe = w.seen.mayContain(dh)
	}
	if sess, dup, err := c.dedupe(ik, dk, maybe); err != nil {
		return err
	} else if dup {
		r.res.Duplicates++
		r.res.Sessions[i] = sess
		ev.Session = sess
		cnt.Duplicates++
		return nil
	}

	var ls *liveSession
	if c.last != nil && c.lastClient == ev.SessionID && c.lastSite == site {
		ls = c.last // the client id's current session, as currentSession would find it
	} else if ls, err = c.currentSession(site, ev.SessionID, sc); err != nil {
		return err
	}
	if ls == nil || ev.TS-ls.rec.LastTS > c.s.opts.SessionTimeout.Milliseconds() {
		visit := 1
		id := strings.Clone(ev.SessionID) // kept in caches: not a part of the caller's memory
		if ls != nil {
			visit = ls.rec.Visit + 1
			id = ev.SessionID + "~" + strconv.Itoa(visit)
		}
		if ls, err = c.newSession(site, id, visit, ev, sc, cnt); err != nil {
			return err
		}
	}

	c.last, c.lastSite, c.lastClient = ls, site, ev.SessionID
	ev.Session = ls.id
	r.res.Sessions[i] = ls.id
	sc.Fold(&ls.state, ev)
	rec := &ls.rec
	rec.Events++
	rec.LastTS = max(rec.LastTS, ev.TS)
	rec.StartTS = min(rec.StartTS, ev.TS)
	if ev.Type == features.MacroConversion {
		rec.Converted = true
	}
	if ev.Type == features.Identify && ev.UserID != "" && rec.User == "" {
		rec.User = ev.UserID
	}
	if !ev.Consent {
		rec.Withdrawn = true
	}
	// Unlogged events are remembered (in memory only) so a retry is not folded twice.
	c.ids[ik] = ls.id
	if !ev.Consent || !rec.Indexed || rec.Withdrawn {
		c.unlogged = append(c.unlogged, unloggedID{string(dk), ls.id})
		r.res.Unlogged++
		cnt.Unlogged++
		return nil
	}

	buf := appendEvent(c.s.w.buf[:0], ev)
	c.s.w.buf = buf
	if err := c.set(c.eventKey(site, ls.id, ev.TS, ev.EventID), append(c.alloc(len(buf)), buf...)); err != nil {
		return err
	}
	if ls.idb == nil {
		ls.idb = c.strBytes(ls.id)
	}
	if err := c.set(dk, ls.idb); err != nil {
		return err
	}
	c.seen = append(c.seen, dh)
	rec.LoggedEvents++
	switch ev.Type {
	case features.Exposure:
		if id := ev.Props[DecisionIDProp]; id != "" {
			if err := c.linkExposure(site, id, ev.EventID); err != nil {
				return err
			}
		}
	case features.MacroConversion:
		v := binary.LittleEndian.AppendUint64(nil, math.Float64bits(ev.Value))
		if err := c.setIdxSeen(key(nsConversion, site, rec.Anon), ev.TS, ev.EventID, v); err != nil {
			return err
		}
	case features.Identify:
		if ev.UserID != "" {
			if err := c.setIdxSeen(key(nsLinkByAnon, site, rec.Anon), ev.TS, ev.EventID, []byte(ev.UserID)); err != nil {
				return err
			}
			if err := c.setIdx(key(nsLinkByUser, site, ev.UserID), ev.TS, ev.EventID, []byte(rec.Anon)); err != nil {
				return err
			}
		}
	}
	cnt.add(ev)
	r.res.Stored++
	return nil
}

// prepare writes the dirty sessions and counters into the transaction and feeds the seen
// filter; the commit follows (launch).
func (c *chunk) prepare() error {
	if c.vals == nil {
		c.vals = make(map[string][]byte, len(c.sessions))
	}
	var stateBuf []byte
	for k, ls := range c.sessions {
		var err error
		stateBuf, err = ls.state.AppendBinary(stateBuf[:0])
		if err != nil {
			return fmt.Errorf("store: encode state of %q: %w", ls.id, err)
		}
		ls.rec.State = stateBuf
		v := appendSession(make([]byte, 0, sessionRecordSize(&ls.rec)), &ls.rec)
		ls.rec.State = nil
		if err := c.set(ls.key, v); err != nil {
			return err
		}
		c.vals[k] = v
	}
	for site, cnt := range c.counters {
		if err := c.set(key(nsCounter, site), cnt.encode()); err != nil {
			return err
		}
	}
	// The filter learns the keys before the commit: a failed commit may still have written
	// some of them, and an extra key in the filter only costs a Badger Get.
	for _, h := range c.seen {
		c.s.w.seen.add(h)
	}
	return nil
}

// publish puts a committed chunk's overlay into the caches.
func (c *chunk) publish() {
	w := &c.s.w
	for k, v := range c.vals {
		c.s.sessions.put(k, v)
	}
	for k, v := range c.clients {
		w.clients.put(k, v)
		c.s.clients.put(k, []byte(v))
	}
	// Logged ids are found through the seen filter and Badger; unlogged ones exist only here.
	for _, u := range c.unlogged {
		w.recentIDs.put(u.key, u.session)
	}
	for k := range c.visitors {
		w.visitors.put(k, struct{}{})
	}
	for site, cnt := range c.counters {
		w.counters[site] = *cnt
	}
	// Session start times of visitors first seen by this process (their visitor key first
	// written by this chunk: none committed before) or whose times are all cached already.
	vk := w.vkBuf
	for p, es := range c.idx {
		if p[0] != nsVisitorSess {
			continue
		}
		vk = append(vk[:0], p...)
		vk[0] = nsVisitor
		var ts []int64
		if _, ok := c.visitors[string(vk)]; !ok {
			old, ok := w.sessTS.get(p)
			if !ok {
				continue
			}
			ts = append(make([]int64, 0, len(old)+len(es)), old...)
		}
		for _, e := range es {
			ts = append(ts, e.ts)
		}
		if len(ts) > maxCachedSessions {
			w.sessTS.delete(p)
			continue
		}
		w.sessTS.put(p, ts)
	}
	w.vkBuf = vk
	c.published = true
}
