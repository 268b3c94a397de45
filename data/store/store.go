package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/nudgehq/nudge/features"
)

// Sentinel errors, matchable with errors.Is.
var (
	// ErrNotFound: no such session (or nothing stored for the key asked for).
	ErrNotFound = errors.New("store: not found")
	// ErrOverloaded: the write queue is full; the caller should refuse (503 + Retry-After)
	// rather than acknowledge.
	ErrOverloaded = errors.New("store: overloaded")
	// ErrClosed: the store is closed or closing.
	ErrClosed = errors.New("store: closed")
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultSessionTimeout = 30 * time.Minute
	DefaultQueueLimit     = 100_000
	DefaultSessionCache   = 50_000
	// DefaultSyncDelay is no delay: since the fsync is the redo log's fdatasync (about 0.2 ms
	// of CPU per group), a 2 ms delay cost `nudge bench ingest` about 8% of its HTTP
	// throughput (alternated runs: 130k–141k events/s against 139k–167k without, 16
	// clients), the latency it adds weighing more than the fsyncs it saves (about 700 events
	// per fsync against 510). Batches that arrive during an fsync still share the next one.
	DefaultSyncDelay = time.Duration(0)
)

// Options configures Open.
type Options struct {
	Dir      string // on-disk directory (ignored when InMemory)
	InMemory bool
	// NoSync trades durability for speed: Append acknowledges before the fsync, so a power
	// cut or kernel crash can lose acknowledged events (a killed process does not). Unsafe.
	NoSync         bool
	SessionTimeout time.Duration // inactivity that ends a session; default 30m
	// Schema returns the feature schema of a site. It is called on every Append group and
	// every Features/Replay call, so it must be cheap (a map lookup).
	Schema func(site string) (*features.Schema, error)
	Logger *slog.Logger
	// Now is the clock (default time.Now). Sessionisation and history follow event time, not
	// this clock; it is kept for time-dependent store logic (e.g. retention) and tests.
	Now        func() time.Time
	QueueLimit int // max events waiting in the write queue before ErrOverloaded; default 100,000
	// SessionCache bounds the in-memory cache of session records (default 50,000).
	SessionCache int
	// Badger overrides the tuned Badger options (tests, tools); nil keeps the defaults.
	Badger func(badger.Options) badger.Options
	// SyncDelay bounds how long an fsync waits for the commits of batches the writer is
	// still working on, so that one fsync covers them too (group commit under load; see
	// syncer). It adds at most this much to a batch's acknowledgement, and only while the
	// writer is busy. Zero means DefaultSyncDelay (no wait); negative, no wait.
	SyncDelay time.Duration
	// NoWarmUp skips the background pass that Open starts to map the pages of the stored
	// session records (see warm.go): the first read of each page then pays a page fault.
	NoWarmUp bool
}

// Store is the Badger-backed event log and session store. It is safe for concurrent use.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	mu      sync.Mutex // guards queue, pending, closed
	queue   []*request
	pending int
	closed  bool
	wake    chan struct{}
	abort   atomic.Bool
	done    chan struct{}   // writer and syncer exited
	synced  chan []*request // committed groups waiting for the fsync
	writing atomic.Bool     // the writer has a group or a commit in flight (syncer: more commits are coming)
	idle    chan struct{}   // the writer has cleared writing (buffered 1; wakes a waiting syncer)
	syncs   atomic.Int64    // fsyncs of the syncer (Syncs)

	// redo is the redo log (redo.go; nil in memory). Under NoSync the records are written
	// all the same, though not synced before the
	// acknowledgement: a replay must end at the last commit Badger has, so every commit
	// goes into the log (a log left by an earlier durable run would otherwise be replayed
	// over this run's newer writes). vlogDirty: a commit wrote to Badger's value log
	// (values of vlogThreshold bytes or more), which the next fsync must sync too.
	redo            *redoLog
	vlogDirty       atomic.Bool
	vlogSyncs       atomic.Int64 // syncs of the value log that vlogDirty asked for (tests)
	vlogThreshold   int64
	replayedCommits int          // commits the redo log replayed at Open (tests)
	life            sync.RWMutex // readers hold R; Close holds W while closing badger
	dbShut          bool         // guarded by life
	closeMu         sync.Mutex

	sessions *shardedCache // encoded session records by session key (writer puts)
	clients  *shardedCache // current server session by client key (writer puts; live.go reads)

	// Writer-only state.
	w writerState

	warmStop chan struct{} // closed by Close: the warm-up pass stops
	warmDone chan struct{} // closed when the warm-up pass has ended (or never started)
	// warmedKeys counts the session records the warm-up pass walked (read after warmDone).
	warmedKeys int

	// testHookGroup, when set, runs at the start of every write group (tests only).
	testHookGroup func()
}

// BadgerOptions returns the Badger options nudge uses: tuned for a small service (smaller
// memtables, two compactors, SyncWrites off since the store's redo log makes writes
// durable, no conflict detection since a single writer writes), logging through log at
// warning level.
//
// Tables are not compressed and there is no block cache: a read of a block not read before
// then costs a binary search in the table's block (a slice of the mmaped file), where Snappy
// blocks cost a 4 KB allocation, a decompression and a block-cache admission (whose policy
// work runs in Ristretto's goroutines) on each cache miss, which is every read of a random old
// session once the store is larger than the cache. The price is disk: the 1M-session benchmark
// store (3M events) takes 726 MB instead of 301 MB with Snappy. Tables that an older
// version wrote with Snappy stay readable (the compression is recorded per table), without
// a cache, until a compaction rewrites them. Badger's expvar metrics (one map update per
// lookup and level) are off: nothing reads them.
func BadgerOptions(dir string, inMemory bool, log *slog.Logger) badger.Options {
	if inMemory {
		dir = ""
	}
	return badger.DefaultOptions(dir).
		WithInMemory(inMemory).
		WithSyncWrites(false).
		WithDetectConflicts(false).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithBaseTableSize(8 << 20).
		WithBaseLevelSize(64 << 20).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithMetricsEnabled(false).
		WithNumCompactors(2).
		WithValueLogFileSize(64 << 20).
		WithLogger(slogAdapter{log})
}

// Open opens (or creates) the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Schema == nil {
		return nil, fmt.Errorf("store: open: Options.Schema is required")
	}
	if !opts.InMemory && opts.Dir == "" {
		return nil, fmt.Errorf("store: open: Options.Dir is required unless InMemory")
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	if opts.SessionCache <= 0 {
		opts.SessionCache = DefaultSessionCache
	}
	if opts.SyncDelay == 0 {
		opts.SyncDelay = DefaultSyncDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	bo := BadgerOptions(opts.Dir, opts.InMemory, opts.Logger)
	if opts.Badger != nil {
		bo = opts.Badger(bo)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open badger at %q: %w", opts.Dir, err)
	}
	var redo *redoLog
	replayed := 0
	if !opts.InMemory {
		// Before anything reads the store: a crash may have left commits to replay.
		redo, replayed, err = openRedo(opts.Dir, bo.Dir, db, opts.Logger)
		if err != nil {
			db.Close()
			return nil, err
		}
		if replayed > 0 {
			opts.Logger.Info("store: replayed the redo log of a process that did not close cleanly",
				"commits", replayed)
		}
	}
	seen, err := loadSeenFilter(db)
	if err != nil {
		if redo != nil {
			redo.close(false)
		}
		db.Close()
		return nil, err
	}
	s := &Store{
		db:       db,
		opts:     opts,
		log:      opts.Logger,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		synced:   make(chan []*request, 64),
		idle:     make(chan struct{}, 1),
		sessions: newShardedCache(opts.SessionCache),
		clients:  newShardedCache(opts.SessionCache),
		w:        newWriterState(opts.SessionCache),
		warmStop: make(chan struct{}),
		warmDone: make(chan struct{}),
	}
	s.w.seen = seen
	s.redo, s.vlogThreshold, s.replayedCommits = redo, bo.ValueThreshold, replayed
	go s.writer()
	go s.syncer()
	if opts.InMemory || opts.NoWarmUp {
		close(s.warmDone)
	} else {
		go s.warmUp()
	}
	return s, nil
}

// Close stops accepting appends, drains the queued ones (writing them), stops the writer and
// closes Badger cleanly. If ctx ends first, batches not yet started fail with ErrClosed; the
// group being written is finished. Calling Close again returns nil.
func (s *Store) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.signal()
	close(s.warmStop)
	var ctxErr error
	select {
	case <-s.done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		s.abort.Store(true)
		<-s.done
	}
	<-s.warmDone
	s.life.Lock()
	s.dbShut = true
	err := s.db.Close()
	s.life.Unlock()
	if s.redo != nil {
		// Badger's Close flushed its memtables to synced tables: the log is not needed any
		// more, unless Close failed.
		if rerr := s.redo.close(err == nil); rerr != nil && err == nil {
			return fmt.Errorf("store: close redo log: %w", rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("store: close badger: %w", err)
	}
	if ctxErr != nil {
		return fmt.Errorf("store: close: queued appends dropped: %w", ctxErr)
	}
	return nil
}

// DB exposes the underlying Badger database to sibling data packages that own other
// namespaces (models, decisions); see the key space in the package doc. Do not write the
// namespaces this package owns.
func (s *Store) DB() *badger.DB { return s.db }

// view runs fn in a read-only transaction unless the store is closed.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.dbShut {
		return ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) schema(site string) (*features.Schema, error) {
	sc, err := s.opts.Schema(site)
	if err != nil {
		return nil, fmt.Errorf("store: schema of site %q: %w", site, err)
	}
	if sc == nil {
		return nil, fmt.Errorf("store: schema of site %q: %w", site, ErrNotFound)
	}
	return sc, nil
}

// slogAdapter routes Badger's logger to slog: errors and warnings only.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, args ...any) {
	if a.l != nil {
		a.l.Error(fmt.Sprintf(f, args...), "component", "badger")
	}
}

func (a slogAdapter) Warningf(f string, args ...any) {
	if a.l != nil {
		a.l.Warn(fmt.Sprintf(f, args...), "component", "badger")
	}
}

func (slogAdapter) Infof(string, ...any)  {}
func (slogAdapter) Debugf(string, ...any) {}
