// Package store is nudge's Badger-backed storage: the append-only event log, sessionisation,
// the live per-session feature state, identity links, per-site counters and the read APIs
// (sessions, point-in-time replay, visitor history, stats) built on them. It is the only
// package of nudge that imports Badger.
//
// It imports features/ and the standard library; never serve/, training/, cmd/ or echo.
//
// # Writes
//
// Append hands a batch to a single writer goroutine that drains the queue of pending batches
// (group commit): it deduplicates, sessionises, folds every event into its session's
// features.State through the site's Schema, and writes the events, the dedupe index, the
// session record (metadata and state), the indexes and the site counters in one Badger
// transaction per chunk of at most maxChunkEvents events. Everything is pipelined: the
// writer starts a chunk's commit (Txn.CommitWith) and builds the next chunk while Badger
// applies it, on transactions opened just before that commit (so they do not wait for it),
// reading the in-flight chunk's writes from its overlay; once Badger has applied a group's
// last chunk, a syncer goroutine runs one fsync for every group applied since its last
// one, while the writer publishes the chunk to the in-memory caches; a batch is
// acknowledged when both are done. There are no transaction conflicts: only the writer
// writes. A failed commit acks the error to every batch of its group and publishes nothing
// to the in-memory caches, and the chunk built on it (the rest of its group, or the next
// group) fails too; a failed fsync acks the error although the group is already visible to
// readers (a retry is deduplicated against it). A group of more than maxChunkEvents events
// spans several transactions, each atomic; if a later one fails, the earlier ones stay (and
// are cached), and every batch of the group is still told it failed, so retries are
// deduplicated.
//
// # Durability: the redo log
//
// Badger runs with SyncWrites off and the store never syncs Badger's memtable logs. Before
// it starts a chunk's commit, the writer writes the chunk's keys and values as one record
// to the store's redo log (redo.go: CRC-framed records in segment files under redo/, in
// commit order), and the fsync that acknowledges a group is an fdatasync of that log.
// Segments are deleted once Badger has flushed the memtables that hold their records to
// tables (which Badger syncs), and all of them at a clean Close; Open replays what a crash
// left, before anything reads the store. Registry updates (models.go) and decision groups
// are logged the same way. Options.NoSync writes the records all the same but acknowledges
// before any fsync: a killed process still loses nothing (the logs are in the page cache),
// a power cut or kernel crash can.
//
// Why not DB.Sync, as before 2026-11-23: (1) it syncs only the active memtable's log, so a
// group applied just before Badger rotated its memtable was acknowledged before it was on
// disk, until Badger had flushed the old memtable (TestRedoLogRecoversWithoutBadgerLogs
// loses half of its events without the redo log); (2) it is an msync of an mmaped file,
// which on this VM costs about four times the CPU of write(2) and fdatasync of the same bytes
// (each synced page is write-protected and its TLB entry shot down): BenchmarkLogSync,
// 122 KB per sync, 745–1067 µs of process CPU and 1.6–1.8 ms against 177–182 µs and
// 0.8 ms (`go test ./data/store -run XXX -bench LogSync -benchtime 400x -count 3`). In
// `nudge bench ingest` the fsyncs went from about 1.7 µs of CPU per event to 0.5–0.9 (two
// profiles; framing, write and fdatasync of the log together), and the HTTP throughput
// from a median of 112,000 to 141,000 events/s (README). The price is the bytes of every
// commit written twice (once to Badger's memtable log, once to the redo log, about 175
// bytes per event in that benchmark) and, after a crash, a replay of up to a few segments
// at Open.
//
// What a crash leaves: every acknowledged batch (its record was synced), and possibly
// batches that were not acknowledged yet (their record was written; a retry is
// deduplicated). Replay writes every logged commit again in log order, over what Badger
// recovered; since every commit Badger applied was logged first, in the same order, this
// ends at the values of the last logged commit. One case is not covered: after a power cut,
// a commit whose record had not been synced yet but whose writes reached the disk through
// Badger (the kernel's writeback of its memtable log, or a memtable flush) can be partly
// overwritten by the replay of earlier records (its session record or counters set back,
// its events kept); such a batch was never acknowledged, and the window is the
// millisecond before an fsync.
//
// The writer keeps an in-memory seen filter (seen.go): a chain of blocked Bloom filters,
// 2 bytes per key, of every committed dedupe, client-session and visitor key and of every
// anonymous id's conversion and link prefix, rebuilt at Open by a keys-only iteration of
// those namespaces and fed before each commit. No false negatives, so a new event id, client
// session or visitor costs no Badger Get, and a visitor without conversions or links no
// history iterator for them; a hit (about 0.1–0.5% false positives) is checked in Badger, so
// every answer stays exact. Unlogged (no-consent) event ids, which are not in Badger, are
// remembered in a bounded in-memory map as before.
//
// Measured on the 2-core shared dev machine (2026-11-23, medians of interleaved runs, same
// binaries before and after the seen filter and smaller chunk maps; the machine's other load
// moves every figure by ±50%): `go test ./data/store -run XXX -bench 'Append$' -benchtime
// 3000x -count 5` 55k -> 100k events/s durable in-process (raw WriteBatch 225k–268k, ratio
// 0.31 -> 0.38); BenchmarkAppendCPU 12.8 -> 9.6 µs of process CPU per event; `nudge bench
// ingest --events 200000` on a quiet machine: HTTP 92k–101k events/s, in-process 125k–138k,
// raw 205k–266k, ratio 0.37–0.49. Then the pipelined commit, data/wire's one string block
// per event (19 -> 8 allocations per event in BenchmarkDecodeBatch) and the writer's
// key/value blocks (BenchmarkAppendCPU 3,113 -> 2,445 allocs, 200.6 -> 197.8 KB per
// 100-event batch). Interleaved with commit 2637f7b (`nudge bench ingest --events 200000`,
// 21 and 27 runs, load average 5–11 from other jobs on both cores), every wall-clock and
// CPU-per-event figure of the two overlapped (HTTP 15k–75k events/s, 17–25 µs of process CPU
// per event): the gain on a quiet machine is not measured here. What the pipeline buys is
// overlap between the writer (about 3 µs per event) and Badger's apply (about 4 µs, the work
// the raw baseline does too), which pays only when a core is free. Profile of the HTTP
// phase: Badger 57% (write loop 30%, L0 flush 15%, fsync 12%), the writer 19%, HTTP and
// JSON decoding 19%, history iterators of returning visitors about 1%.
//
// The writer's own CPU per event, after that: a settled chunk's maps, key/value blocks,
// Badger entry slabs and session structs are reused by the next chunk (only once Badger has
// applied its commit and no chunk is built on it; tests poison the reused memory); a
// batch's dedupe keys are looked up in the seen filter in one loop first (the filter's
// cache and TLB misses overlap there, about 250 ns per event when paid one at a time);
// cache lookups by byte keys copy nothing; a new session's keys come from the chunk's
// block; and a returning visitor's history reads no Badger iterator when its visitor key is
// not committed yet or its session start times are cached (visitors first seen by this
// process, up to 32 sessions each: at most 0.3 KB for each of SessionCache visitors). Interleaved with 8526dc1 (two sets of 8 runs each, load
// average 1.0–1.5 and 1.8–2.5; medians): BenchmarkAppendCPU 9.4 -> 7.0 and 8.2 -> 6.7 µs of
// process CPU per event (2,445 -> 1,976 allocations, 198 -> 137 KB per 100-event batch),
// BenchmarkAppendCPUIngest (the events of nudge bench ingest) 6.3 -> 5.3 and 6.5 -> 4.8 µs
// (2,442 -> 1,959 allocations, 173 -> 112 KB); in `nudge bench ingest --direct=false`
// the writer goroutine's profile in the HTTP phase went from 3.0 to 2.3 µs per event
// (medians of 5 runs of 3 rounds), of which Badger's Txn.Set and commit (as in the raw
// baseline) are about 0.9 µs, features.Fold and the event encoding about 0.4 µs.
//
// # Reads
//
// Features (by server session id) and LiveSession (the decide path, by client session id)
// first look in the caches the writer fills at every commit (sessions written since Open: no
// Badger transaction). Otherwise Features costs one read-only transaction with one Get of the
// session record, LiveSession one transaction with two (the client pointer, then the record).
// The value is decoded where Badger holds it (no ValueCopy); Features reads only the
// record's schema fingerprint and state (sessionState), then features.State and
// Schema.Vector write into the caller's slice. Tables are uncompressed and Badger runs
// without a block cache (see BadgerOptions): a Get is bloom-filter checks of the tables whose
// key range holds the key, a binary search of one table's block index and of one block, both
// in the mmaped file. Reading a page of a table for the first time in a process takes a page
// fault (15–40 µs on the 2-core VM, more than a whole read), so Open starts a background pass
// over the session records' keys (warm.go; 0.7–1.2 s for a million sessions on the loaded dev
// VM) that takes those faults in key order; Close stops it.
//
// Measured per cold read (BenchmarkFeatures, BenchmarkLiveSessionCold: 20,000 random
// sessions of a settled on-disk store, freshly opened; medians of 5–6 runs alternating with
// commit 2637f7b, which had Snappy blocks, a 64 MB block cache and ValueCopy, on the shared
// 2-core VM at load average 5–8, which sets every tail figure here; "fresh" reads start when
// Open returns, "warmed" once the warm-up pass is done; CPU is the whole process's per read):
//
//	1M sessions  Features      before p50 8.4 µs  p99 205 µs  p99.9 1.9 ms  CPU 26 µs  6.4 KB 40 allocs
//	                           fresh      7.4         338            2.1        31     1.7 KB 27
//	                           warmed     6.1         136            1.8        16
//	             LiveSession   before    15.7         300            1.8        46     8.8 KB 68
//	                           warmed    11.2         146            1.4        29     2.6 KB 53
//	50k sessions Features      before     4.9         156            0.57       21     2.4 KB 25
//	                           warmed     3.6          85            0.18        8.9   1.6 KB 20
//	             LiveSession   before     8.1         138            1.2        22     3.1 KB 44
//	                           warmed     6.7         110            0.35       16     2.4 KB 42
//
// Without the warm-up the uncompressed tables cost more page faults than Snappy ones (0.19
// per read against 0.08 in the first 20,000 reads of 1M sessions), hence fresh's tail. The
// profile of a cold read now is Badger's: the transaction (its read watermark wakes a
// goroutine at begin and end), bloom checks, the binary searches of the block index and the
// block. GC is no factor (0–3 cycles per 20,000 reads). The tails above are the machine's
// other load: a read's own thread CPU time has the same p99, so the time is spent running,
// in page faults and in contention, not waiting on a lock of ours (measured before the
// change with -store.thread-cpu). The writer's Close leaves no compaction due, so a store as
// the writer left it (-store.settle=false) reads like a settled one; reads while ingest's
// compactions run are not measured here. Commands: `go test ./data/store -run XXX -bench
// 'Features$|LiveSessionCold$' -benchtime 20000x` (50k sessions; `-tags slow` for 1M, with
// `-store.fixture-dir DIR` to build the 1M store once, 1.5–4.5 min, and reuse it).
//
// # Rules
//
//   - Dedupe: (site, event_id) is stored once, also across restarts; a duplicate reports the
//     server session of the stored original.
//   - Sessions: the first visit of a client session id is the server session with the same
//     id; an event arriving after more than SessionTimeout of inactivity (event time minus the
//     session's last event time) starts the next visit, id + "~2", "~3", ... Late events
//     (older than the session's last event) are folded into the current visit on arrival.
//   - Visitor: a session belongs to the anonymous id of its first event; its conversions and
//     identity links are recorded under that id.
//   - Identity: an Identify event with a UserID records a link (anonymous id, user id, time,
//     event id); every link is kept, none is overwritten. An anonymous id belongs to the user
//     of its EARLIEST link (by event time). A later link of the same anonymous id to another
//     user is recorded but does not move the anonymous id, so two different user ids are
//     never merged.
//   - History: a session's features.VisitorHistory is computed once, at its first event, from
//     the sessions and macro conversions of its anonymous id and, when that id belongs to a
//     user as of the session start, of every anonymous id belonging to the same user — all
//     strictly before the session start. Replay computes it with the same function as of the
//     same time, so live and replayed vectors agree for in-order streams.
//   - Consent: an event with Consent=false is folded into the live session state (the decide
//     path needs it) but is written neither to the log nor to the dedupe index, and does not
//     feed identities, history or counters other than Unlogged. From the first such event on,
//     the session's consent counts as withdrawn: none of its later events is logged either.
//
// # Key space
//
// Every key starts with a one-byte namespace, then length-prefixed (uvarint) strings, then
// fixed-width big-endian timestamps (sign bit flipped) so keys sort in time order:
//
//	0x01 e  event log        site|session|ts|event_id          -> event (codec v1)
//	0x02 d  dedupe           site|event_id                     -> server session id
//	0x03 s  session record   site|session                      -> metadata + features.State
//	0x04 c  client session   site|client_session_id            -> current server session id
//	0x05 S  sessions by time site|start_ts|session             -> ""
//	0x06 v  visitor sessions site|anonymous_id|start_ts|session -> ""
//	0x07 x  conversions      site|anonymous_id|ts|event_id     -> value (float64 bits)
//	0x08 a  links by anon    site|anonymous_id|ts|event_id     -> user id
//	0x09 u  links by user    site|user_id|ts|event_id          -> anonymous id
//	0x0A V  visitors seen    site|anonymous_id                 -> first session start
//	0x0B t  site counters    site|name                         -> int64
//	0x10 models: artifacts; 0x11 promotion history (models.go)
//	0x12 decision log; 0x13 decision by id; 0x14 exposure links (decisions.go)
//	0x15-0x1F  reserved for later per-site data (budgets, caps, erasure log)
//	0xF0-0xFF  reserved: store metadata (0xFF format version)
//
// Values are hand-written binary with a leading version byte.
package store
