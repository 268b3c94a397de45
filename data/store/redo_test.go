package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// smallBadger makes Badger rotate and flush memtables after a few MB (the writer's chunks
// stay under its batch limit of 15% of a memtable) and run no compactions, so that a copy
// of the directory taken while the store is open is a state Badger could have been left in.
func smallBadger(o *Options) {
	o.Badger = func(bo badger.Options) badger.Options {
		return bo.WithMemTableSize(4 << 20).WithValueThreshold(64 << 10).WithNumCompactors(0)
	}
}

// crashCopy copies the store's directory as a crash could leave it: MANIFEST first (the
// tables it names were complete and synced when it named them), then the tables, the
// redo log and, with mem, Badger's memtable logs as the page cache holds them (a killed
// process); without mem, none of them (a power cut before any of them reached the disk:
// SyncWrites is off and the store never syncs them).
func crashCopy(t *testing.T, src string, mem bool) string {
	t.Helper()
	dst := t.TempDir()
	cp := func(rel string) {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if errors.Is(err, os.ErrNotExist) {
			return // deleted since the listing (a flushed memtable)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cp("MANIFEST")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == "MANIFEST" || n == "LOCK" || e.IsDir():
		case strings.HasSuffix(n, ".mem") && !mem:
		default:
			cp(n)
		}
	}
	segs, err := listSegments(filepath.Join(src, redoDirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range segs {
		cp(filepath.Join(redoDirName, filepath.Base(seg.path)))
	}
	return dst
}

// redoBatches appends n batches of 100 events (sessions of 20, as the ingest bench) and
// returns the events.
func redoBatches(t *testing.T, s *Store, from, n int) []features.Event {
	t.Helper()
	var all []features.Event
	for b := from; b < from+n; b++ {
		evs := make([]features.Event, 100)
		for j := range evs {
			i := b*100 + j
			sess := i / 20
			evs[j] = pv(fmt.Sprint("e", i), fmt.Sprint("s", sess), fmt.Sprint("v", sess/3),
				t0+int64(i%20)*sec, fmt.Sprint("/p/", i%20))
		}
		mustAppend(t, s, "site", evs...)
		all = append(all, evs...)
	}
	return all
}

// assertAllStored checks that every event of evs is stored once and the counters agree.
func assertAllStored(t *testing.T, s *Store, evs []features.Event) {
	t.Helper()
	ctx := context.Background()
	perSession := map[string]int{}
	for _, ev := range evs {
		perSession[ev.SessionID]++
	}
	for sess, n := range perSession {
		info, got, err := s.Session(ctx, "site", sess)
		if err != nil || len(got) != n || info.Events != n {
			t.Fatalf("session %s: %d events, record says %d (%v); want %d", sess, len(got), info.Events, err, n)
		}
	}
	st, err := s.Stats(ctx, "site")
	if err != nil || st.Events["page_view"] != int64(len(evs)) || st.Sessions != int64(len(perSession)) {
		t.Fatalf("stats %+v (%v), want %d page views in %d sessions", st, err, len(evs), len(perSession))
	}
	// Every id is known: sending them all again stores nothing.
	for lo := 0; lo < len(evs); lo += 500 {
		res := mustAppend(t, s, "site", evs[lo:min(lo+500, len(evs))]...)
		if res.Stored != 0 {
			t.Fatalf("re-sending events %d..: %+v, want all duplicates", lo, res)
		}
	}
}

// TestRedoLogRecoversWithoutBadgerLogs: every acknowledged event survives the loss of all of
// Badger's memtable logs (which the store never syncs), through the redo log, including those
// applied to a memtable just before Badger rotated it (which DB.Sync, syncing only the new
// memtable, did not cover). The same copy without the redo log loses events: the check can
// fail. Closed segments are deleted once Badger has flushed their memtables.
func TestRedoLogRecoversWithoutBadgerLogs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, smallBadger)
	s.redo.segMax = 256 << 10
	evs := redoBatches(t, s, 0, 400) // about 9 MB of Badger writes: two memtables flushed
	if _, minMem, _ := memtableIDs(dir); minMem <= 1 {
		t.Fatalf("no memtable flushed (lowest memtable id %d): the test does not test rotation", minMem)
	}
	if n := s.redo.segments(); uint64(n) >= s.redo.num {
		t.Fatalf("%d segments of %d kept: none deleted after its memtables were flushed", n, s.redo.num)
	}
	lost := crashCopy(t, dir, false)
	if err := os.RemoveAll(filepath.Join(lost, redoDirName)); err != nil {
		t.Fatal(err)
	}
	crashed := crashCopy(t, dir, false)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	without := openStore(t, lost, smallBadger)
	st, err := without.Stats(context.Background(), "site")
	if err != nil || st.Events["page_view"] >= int64(len(evs)) {
		t.Fatalf("without the redo log: %+v (%v): the memtable logs held nothing unflushed?", st, err)
	}
	t.Logf("without the redo log %d of %d events are left", st.Events["page_view"], len(evs))

	s2 := openStore(t, crashed, smallBadger)
	if s2.replayedCommits == 0 {
		t.Fatal("nothing replayed")
	}
	assertAllStored(t, s2, evs)
}

// TestRedoLogReplayOverBadgerLogs: after a killed process (Badger's memtable logs intact, as
// the page cache held them), replaying the redo log over what Badger recovered stores every
// event once and leaves the counters and session records as they were.
func TestRedoLogReplayOverBadgerLogs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, smallBadger)
	s.redo.segMax = 256 << 10
	evs := redoBatches(t, s, 0, 150)
	crashed := crashCopy(t, dir, true)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, crashed, smallBadger)
	if s2.replayedCommits == 0 {
		t.Fatal("nothing replayed")
	}
	assertAllStored(t, s2, evs)
	// The store goes on: new events after the replay, then a clean close leaves no log.
	more := redoBatches(t, s2, 150, 20)
	if err := s2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(filepath.Join(crashed, redoDirName)); len(segs) != 0 {
		t.Fatalf("%d segments left after a clean close", len(segs))
	}
	s3 := openStore(t, crashed, smallBadger)
	if s3.replayedCommits != 0 {
		t.Fatalf("replayed %d commits after a clean close", s3.replayedCommits)
	}
	assertAllStored(t, s3, append(evs, more...))
}

// TestRedoLogSkipsFailedCommits: a commit Badger failed to apply is cancelled in the log,
// so a replay does not store what the client was told failed.
func TestRedoLogSkipsFailedCommits(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	var fail atomic.Bool
	boom := errors.New("boom")
	s.w.testFailCommit = func() error {
		if fail.Load() {
			return boom
		}
		return nil
	}
	ok := redoBatches(t, s, 0, 3)
	fail.Store(true)
	if _, err := s.Append(context.Background(), "site", pvBatch("x", "sx", "vx", 5)); !errors.Is(err, boom) {
		t.Fatalf("append: %v, want boom", err)
	}
	fail.Store(false)
	ok = append(ok, redoBatches(t, s, 3, 2)...)
	crashed := crashCopy(t, dir, false)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, crashed, nil)
	if s2.replayedCommits != 5 {
		t.Fatalf("replayed %d commits, want the 5 that Badger applied", s2.replayedCommits)
	}
	if _, _, err := s2.Session(context.Background(), "site", "sx"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed batch's session after replay: %v, want not found", err)
	}
	assertAllStored(t, s2, ok)
}

// TestRedoLogTornTailAndCorruption: a record cut short at the end of the last segment (the
// crash came during its write) ends the replay there and is cut off the file; a bad record
// in an earlier segment is corruption, and Open says which file.
func TestRedoLogTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	s.redo.segMax = 1 // every commit starts a new segment
	evs := redoBatches(t, s, 0, 4)
	crashed := crashCopy(t, dir, false)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(filepath.Join(crashed, redoDirName))
	if err != nil || len(segs) < 4 {
		t.Fatalf("%d segments (%v), want one per batch", len(segs), err)
	}
	last := segs[len(segs)-1].path
	before, _ := os.Stat(last)
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := redoEntry(redoBegin(nil, redoKindCommit), key(nsEvent, "site", "torn"), []byte("x"))
	binary.BigEndian.PutUint32(torn, uint32(len(torn)-redoHeader))
	if _, err := f.Write(torn[:len(torn)-3]); err != nil { // cut short: no valid checksum
		t.Fatal(err)
	}
	f.Close()

	corrupt := crashCopy(t, crashed, true)

	s2 := openStore(t, crashed, nil)
	assertAllStored(t, s2, evs)
	if s2.replayedCommits != 4 {
		t.Fatalf("replayed %d, want 4", s2.replayedCommits)
	}
	if after, err := os.Stat(last); err != nil || after.Size() != before.Size() {
		t.Fatalf("the torn segment after the replay: %v, want it cut back to %d bytes", err, before.Size())
	}

	// A flipped byte in the first segment (not the last): Open fails and names the file.
	first := filepath.Join(corrupt, redoDirName, filepath.Base(segs[0].path))
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xFF
	if err := os.WriteFile(first, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Options{Dir: corrupt, Schema: schemaOf})
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), filepath.Base(first)) {
		t.Fatalf("open over a corrupt segment: %v", err)
	}
}

// TestRedoLogNoSync: under NoSync the writer still writes every commit's record (without
// an fsync before the acknowledgement), so that a log left by an earlier durable run is not
// replayed over this run's newer writes: durable run, crash, NoSync run on the copy, crash
// again, and the counters and sessions of both runs are all there.
func TestRedoLogNoSync(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	evs := redoBatches(t, s, 0, 2)
	crashed := crashCopy(t, dir, false)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, crashed, func(o *Options) { o.NoSync = true })
	if s2.replayedCommits != 2 {
		t.Fatalf("replayed %d, want 2", s2.replayedCommits)
	}
	size := s2.redo.size
	more := redoBatches(t, s2, 2, 2)
	if s2.redo.size == size || s2.Syncs() != 0 {
		t.Fatalf("NoSync: %d bytes of records, %d fsyncs; want records and no fsync", s2.redo.size-size, s2.Syncs())
	}
	all := append(evs, more...)
	assertAllStored(t, s2, all)
	again := crashCopy(t, crashed, true) // killed: Badger's memtable logs as the page cache holds them
	if err := s2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s3 := openStore(t, again, nil)
	assertAllStored(t, s3, all)
}

// TestRedoLogWriteFailure: a record that cannot be written (a short write, as on a full
// disk) fails its batch with nothing stored and is cut off the segment, and the batches
// after it are stored and replayed as usual. When the cut fails too, the log is broken:
// every later batch fails and says to restart.
func TestRedoLogWriteFailure(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	evs := redoBatches(t, s, 0, 1)
	var fail atomic.Bool
	boom := errors.New("no space left")
	s.redo.testFailWrite = func() error {
		if fail.Load() {
			return boom
		}
		return nil
	}
	fail.Store(true)
	if _, err := s.Append(context.Background(), "site", pvBatch("x", "sx", "vx", 5)); !errors.Is(err, boom) {
		t.Fatalf("append with a failing log: %v, want %v", err, boom)
	}
	fail.Store(false)
	if _, _, err := s.Session(context.Background(), "site", "sx"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed batch's session: %v, want not found", err)
	}
	evs = append(evs, redoBatches(t, s, 1, 1)...)
	assertAllStored(t, s, evs)
	crashed := crashCopy(t, dir, false)

	// Now the cut fails too (the file is read-only): broken for good.
	ro, err := os.Open(s.redo.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	s.redo.appendMu.Lock()
	good := s.redo.f
	s.redo.f = ro
	s.redo.appendMu.Unlock()
	if _, err := s.Append(context.Background(), "site", pvBatch("y", "sy", "vy", 5)); err == nil || !strings.Contains(err.Error(), "redo log") {
		t.Fatalf("append on an unwritable log: %v", err)
	}
	_, err = s.Append(context.Background(), "site", pvBatch("z", "sz", "vz", 5))
	if !errors.Is(err, errRedoBroken) || !strings.Contains(err.Error(), "cutting it off") {
		t.Fatalf("append after the log broke: %v, want %v saying why", err, errRedoBroken)
	}
	s.redo.appendMu.Lock()
	s.redo.f = good
	s.redo.appendMu.Unlock()

	s2 := openStore(t, crashed, nil)
	assertAllStored(t, s2, evs)
}

// TestParseRecords: records parse back; a cut-short or bit-flipped record ends the parse at
// the last good record's end.
func TestParseRecords(t *testing.T) {
	dir, bdir := t.TempDir(), t.TempDir()
	db, err := badger.Open(BadgerOptions("", true, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, _, err := openRedo(dir, bdir, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for i := range 3 {
		r := redoEntry(redoBegin(nil, redoKindCommit), []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("v", i)))
		if _, err := l.append(r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := l.close(false); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(filepath.Join(dir, redoDirName))
	data, _ := os.ReadFile(segs[0].path)
	got, good := parseRecords(data)
	if len(got) != 3 || good != len(data) || got[2].seq != 3 || got[1].kind != redoKindCommit {
		t.Fatalf("parsed %d records to %d of %d", len(got), good, len(data))
	}
	end2 := len(recs[0]) + len(recs[1])
	if _, good := parseRecords(data[:len(data)-1]); good != end2 {
		t.Fatalf("cut short: good to %d, want %d", good, end2)
	}
	flipped := append([]byte(nil), data...)
	flipped[end2+redoPrefix] ^= 1
	if got, good := parseRecords(flipped); len(got) != 2 || good != end2 {
		t.Fatalf("bit flip: %d records to %d, want 2 to %d", len(got), good, end2)
	}
}

// TestRedoLogKeepsRegistryWrites: a model registered and promoted (each durable when it
// returns) survives the loss of Badger's memtable logs, artifact included, through the redo
// log; the rollback after it too.
func TestRedoLogKeepsRegistryWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	art := make([]byte, 3*artifactChunk+17) // several chunks
	for i := range art {
		art[i] = byte(i * 7)
	}
	for range 2 {
		rec := testRecord("shop", "propensity", "")
		rec.Artifact = art
		if err := s.PutModel(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	for v := 1; v <= 2; v++ {
		if err := s.Promote(ctx, "shop", "propensity", v, t0+int64(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RollbackModel(ctx, "shop", "propensity", t0+3); err != nil {
		t.Fatal(err)
	}
	crashed := crashCopy(t, dir, false)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, crashed, nil)
	if s2.replayedCommits == 0 {
		t.Fatal("nothing replayed")
	}
	got, err := s2.Promoted(ctx, "shop", "propensity")
	if err != nil || got.Version != 1 || string(got.Artifact) != string(art) {
		t.Fatalf("promoted after the crash: %+v, %v; want version 1 (rolled back to) with its artifact", got, err)
	}
	hist, err := s2.Promotions(ctx, "shop", "propensity")
	if err != nil || len(hist) != 3 || !hist[2].Rollback {
		t.Fatalf("promotions after the crash: %+v, %v", hist, err)
	}
}

// TestRedoLogKeepsDecisions: a decision written in a group of its own (no fsync of its
// own) is in the redo log, so the next acknowledged ingest batch's fsync makes it survive
// the loss of Badger's memtable logs.
func TestRedoLogKeepsDecisions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	rec := &DecisionRecord{ID: "d1", Site: "site", Session: "s1", AnonymousID: "a1", TS: t0,
		Group: "treatment", Arm: "discount10", Probability: 0.9, Reason: "test"}
	if err := s.LogDecision(ctx, rec); err != nil {
		t.Fatal(err)
	}
	waitDecision(t, s, "site", "d1")
	evs := redoBatches(t, s, 0, 1) // its fsync covers the decision's record
	crashed := crashCopy(t, dir, false)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, crashed, nil)
	got, _, err := s2.Decision(ctx, "site", "d1")
	if err != nil || got.Arm != "discount10" {
		t.Fatalf("decision after the crash: %+v, %v", got, err)
	}
	assertAllStored(t, s2, evs)
}

// TestRedoLogBigValues: an event whose encoded value goes to Badger's value log (at or over
// its ValueThreshold, 64 KB here) is replayed like any other, and its group's fsync also
// syncs the value log (vlogDirty is consumed).
func TestRedoLogBigValues(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, smallBadger)
	ev := pv("big", "sb", "vb", t0, "/p/big")
	ev.Props["blob"] = strings.Repeat("x", 100<<10)
	mustAppend(t, s, "site", pv("small", "ss", "vs", t0, "/p/small"))
	if n := s.vlogSyncs.Load(); n != 0 {
		t.Fatalf("%d value log syncs for small values", n)
	}
	mustAppend(t, s, "site", ev)
	if n := s.vlogSyncs.Load(); n != 1 || s.vlogDirty.Load() {
		t.Fatalf("%d value log syncs (dirty %v) for one big value, want 1 before the acknowledgement", n, s.vlogDirty.Load())
	}
	crashed := crashCopy(t, dir, false)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, crashed, smallBadger)
	_, got, err := s2.Session(ctx, "site", "sb")
	if err != nil || len(got) != 1 || len(got[0].Props["blob"]) != 100<<10 {
		t.Fatalf("after the crash: %d events, %v", len(got), err)
	}
}
