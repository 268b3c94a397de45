package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// The redo log makes acknowledged writes durable (see the package doc, "Durability").
//
// It is a directory of segment files, redo/NNNNNNNNNNNNNNNNNNNN.log, written in order. A
// record is
//
//	u32 payload length | u32 CRC-32C of the payload | payload
//	payload: kind (1 byte) | sequence number (u64) | body
//
// where a commit's body is its entries, each uvarint key length, key, uvarint value
// length, value, and a cancel's body is the sequence number of a commit that Badger failed
// to apply. All integers are big-endian except the uvarints.
//
// The writer writes a chunk's record (write(2), into the page cache) before it starts the
// chunk's Badger commit, so every commit Badger has is in the log (write-ahead); the syncer
// makes the records durable with one fdatasync per group, in place of Badger's DB.Sync. The
// writer starts a new segment once the current one is past redoSegmentMax (with no commit
// in flight), noting the highest Badger memtable file id at that moment: every record of
// the closed segment is in that memtable or an older one. A closed segment is deleted once
// none of those memtables is left, that is once Badger has flushed them to tables, which
// it syncs. Store.Close deletes every segment once Badger has closed cleanly (Badger's
// Close flushes its memtables).
//
// Open replays every segment left by a process that did not close cleanly, oldest first,
// before anything reads the store: each commit not cancelled is written again with its
// keys and values. Badger already holds those of them it had applied (its own memtable
// logs survive a killed process), and writing them again in order ends at the same values,
// since every commit Badger applied is in the log and the log's order is the commit order.
const (
	redoDirName    = "redo"
	redoSegmentExt = ".log"
	// redoSegmentMax is the size past which the writer starts a new segment: about half a
	// Badger memtable of the events `nudge bench ingest` sends.
	redoSegmentMax = 16 << 20

	redoHeader     = 8
	redoPrefix     = redoHeader + 1 + 8 // header, kind, sequence number
	redoKindCommit = byte(1)
	redoKindCancel = byte(2)
)

var redoCRC = crc32.MakeTable(crc32.Castagnoli)

// redoSegment is a closed segment and the highest Badger memtable id when it was closed.
type redoSegment struct {
	path   string
	maxMem int
}

// redoLog is the store's redo log. The writer goroutine appends and rotates; the syncer
// syncs; registry updates (models.go) append and sync too.
type redoLog struct {
	dir       string // the redo directory
	badgerDir string // where Badger keeps its memtable files
	segMax    int64
	log       *slog.Logger

	appendMu sync.Mutex // serialises appends, rotation and close
	syncMu   sync.Mutex // held by sync and while rotation or close swaps the file
	f        *os.File   // the current segment (syncMu and appendMu to swap it)
	num      uint64     // the current segment's number
	size     int64      // bytes in f (appendMu)
	seq      uint64     // the last record's sequence number (appendMu)
	closed   []redoSegment
	inflight int                   // registry commits appended and not yet applied (appendMu): no rotation
	broken   atomic.Pointer[error] // set once an fsync or a failed write could not be undone: no more records
	scratch  []byte

	// testFailWrite, when set, is asked before each record; an error makes the write stop
	// halfway and fail with it (tests only).
	testFailWrite func() error
}

// errRedoBroken wraps the error that made the redo log unusable.
var errRedoBroken = errors.New("store: the redo log failed earlier; restart nudge")

// brokenErr is nil while the log is usable, else errRedoBroken wrapping why it is not.
func (l *redoLog) brokenErr() error {
	if p := l.broken.Load(); p != nil {
		return fmt.Errorf("%w: %w", errRedoBroken, *p)
	}
	return nil
}

// breaks records why the log is unusable (the first reason stays).
func (l *redoLog) breaks(err error) { l.broken.CompareAndSwap(nil, &err) }

// redoBegin starts a record in buf (its header and sequence number are filled by append).
func redoBegin(buf []byte, kind byte) []byte {
	buf = append(buf[:0], make([]byte, redoPrefix)...)
	buf[redoHeader] = kind
	return buf
}

// redoEntry appends one key and value to a commit record, starting it if buf is empty.
func redoEntry(buf, k, v []byte) []byte {
	if len(buf) == 0 {
		buf = redoBegin(buf, redoKindCommit)
	}
	buf = binary.AppendUvarint(buf, uint64(len(k)))
	buf = append(buf, k...)
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// append numbers and frames rec (started by redoBegin or redoEntry) and writes it to the current
// segment. A write that fails is cut off again, so the segment never holds a torn record
// before a good one; if that fails too the log is broken.
func (l *redoLog) append(rec []byte) (uint64, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.appendLocked(rec)
}

func (l *redoLog) appendLocked(rec []byte) (uint64, error) {
	if err := l.brokenErr(); err != nil {
		return 0, err
	}
	seq := l.seq + 1
	binary.BigEndian.PutUint64(rec[redoHeader+1:], seq)
	binary.BigEndian.PutUint32(rec[0:], uint32(len(rec)-redoHeader))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(rec[redoHeader:], redoCRC))
	write := l.f.Write
	if l.testFailWrite != nil {
		if err := l.testFailWrite(); err != nil {
			write = func(b []byte) (int, error) { // a short write, as on a full disk
				n, _ := l.f.Write(b[:len(b)/2])
				return n, err
			}
		}
	}
	if _, err := write(rec); err != nil {
		if terr := l.f.Truncate(l.size); terr != nil {
			l.breaks(fmt.Errorf("write %s: %w (and cutting it off: %v)", l.f.Name(), err, terr))
		} else if _, serr := l.f.Seek(l.size, io.SeekStart); serr != nil {
			l.breaks(fmt.Errorf("write %s: %w (and seeking back: %v)", l.f.Name(), err, serr))
		}
		return 0, fmt.Errorf("store: redo log: %w", err)
	}
	l.size += int64(len(rec))
	l.seq = seq
	return seq, nil
}

// beginCommit appends the record of a commit made outside the writer (a registry update),
// which endCommit ends once Badger has it: until then no new segment is started, since
// the rotation must find every record of the closed segment in a memtable.
func (l *redoLog) beginCommit(rec []byte) (uint64, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	seq, err := l.appendLocked(rec)
	if err == nil {
		l.inflight++
	}
	return seq, err
}

func (l *redoLog) endCommit() {
	l.appendMu.Lock()
	l.inflight--
	l.appendMu.Unlock()
}

// cancel records that Badger failed to apply commit seq: replay skips it.
func (l *redoLog) cancel(seq uint64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.scratch = redoBegin(l.scratch, redoKindCancel)
	l.scratch = binary.BigEndian.AppendUint64(l.scratch, seq)
	_, err := l.appendLocked(l.scratch)
	return err
}

// sync makes every record appended so far durable. After a failed fdatasync nothing
// written since the previous one can be trusted to be on disk (the kernel may have
// dropped the dirty pages), so the log is broken from then on.
func (l *redoLog) sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.brokenErr(); err != nil {
		return err
	}
	if err := fdatasync(l.f); err != nil {
		l.breaks(fmt.Errorf("fdatasync %s: %w", l.f.Name(), err))
		return fmt.Errorf("store: redo log: %w", err)
	}
	return nil
}

// rotateIfFull starts a new segment if the current one is past segMax, and deletes the
// closed segments whose memtables Badger has flushed. The writer calls it with no commit
// of its own in flight, and it does nothing while a registry commit is: so every record
// so far is in a memtable whose file exists now or was flushed.
func (l *redoLog) rotateIfFull() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.size < l.segMax || l.inflight > 0 {
		return nil
	}
	if err := l.brokenErr(); err != nil {
		return err
	}
	maxMem, _, err := memtableIDs(l.badgerDir)
	if err != nil {
		return fmt.Errorf("store: redo log: %w", err)
	}
	next, err := createSegment(l.dir, l.num+1)
	if err != nil {
		return fmt.Errorf("store: redo log: %w", err)
	}
	l.syncMu.Lock()
	old := l.f
	// The old segment's last records may not be synced yet, and the syncer syncs only the
	// current segment from now on.
	if err := fdatasync(old); err != nil {
		l.breaks(fmt.Errorf("fdatasync %s: %w", old.Name(), err))
		l.syncMu.Unlock()
		next.Close()
		return fmt.Errorf("store: redo log: %w", err)
	}
	l.f, l.num, l.size = next, l.num+1, 0
	l.syncMu.Unlock()
	l.closed = append(l.closed, redoSegment{path: old.Name(), maxMem: maxMem})
	if err := old.Close(); err != nil {
		l.log.Warn("store: redo log: close segment", "path", old.Name(), "err", err)
	}
	l.collect()
	return nil
}

// collect deletes the closed segments whose memtables are all gone (flushed to tables).
func (l *redoLog) collect() {
	_, minMem, err := memtableIDs(l.badgerDir)
	if err != nil {
		l.log.Warn("store: redo log: list memtables", "err", err)
		return
	}
	n := 0
	for _, seg := range l.closed {
		if seg.maxMem >= minMem { // maxMem never decreases: the later ones stay too
			break
		}
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("store: redo log: delete segment", "path", seg.path, "err", err)
			break
		}
		n++
	}
	l.closed = slices.Delete(l.closed, 0, n)
}

// close closes the current segment; with clean (Badger has closed cleanly, so its tables
// hold everything) it deletes every segment.
func (l *redoLog) close(clean bool) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if !clean {
		return err
	}
	segs, lerr := listSegments(l.dir)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	// Oldest first, and none after a failure: what is left is the log's end, which a replay
	// at the next Open writes again over what it already holds. Older segments left without
	// the newer ones would take keys back to older values.
	for _, seg := range segs {
		if rerr := os.Remove(seg.path); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// segments returns the number of segment files (tests).
func (l *redoLog) segments() int {
	segs, _ := listSegments(l.dir)
	return len(segs)
}

// openRedo replays what the segments in dir/redo hold into db (see the redo log's doc) and
// starts a new segment. It returns the commits replayed.
func openRedo(dir, badgerDir string, db *badger.DB, log *slog.Logger) (*redoLog, int, error) {
	rdir := filepath.Join(dir, redoDirName)
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("store: redo log: %w", err)
	}
	segs, err := listSegments(rdir)
	if err != nil {
		return nil, 0, fmt.Errorf("store: redo log: %w", err)
	}
	l := &redoLog{dir: rdir, badgerDir: badgerDir, segMax: redoSegmentMax, log: log}
	replayed := 0
	if len(segs) > 0 {
		if replayed, l.seq, err = replaySegments(segs, db); err != nil {
			return nil, 0, err
		}
		maxMem, _, err := memtableIDs(badgerDir)
		if err != nil {
			return nil, 0, fmt.Errorf("store: redo log: %w", err)
		}
		for _, seg := range segs {
			l.closed = append(l.closed, redoSegment{path: seg.path, maxMem: maxMem})
		}
		l.num = segs[len(segs)-1].num
	}
	if l.f, err = createSegment(rdir, l.num+1); err != nil {
		return nil, 0, fmt.Errorf("store: redo log: %w", err)
	}
	l.num++
	return l, replayed, nil
}

type segmentFile struct {
	path string
	num  uint64
}

func listSegments(dir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segmentFile
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), redoSegmentExt)
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segmentFile{path: filepath.Join(dir, e.Name()), num: n})
	}
	slices.SortFunc(segs, func(a, b segmentFile) int { return cmp.Compare(a.num, b.num) })
	return segs, nil
}

// createSegment creates segment num and syncs the directory, so that the file's records
// are found after a crash once they are synced.
func createSegment(dir string, num uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%020d%s", num, redoSegmentExt)),
		os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// memtableIDs returns the highest and lowest id of Badger's memtable files (NNNNN.mem) in
// dir; with none, max is 0 and min is the largest int.
func memtableIDs(dir string) (maxID, minID int, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	maxID, minID = 0, int(^uint(0)>>1)
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".mem")
		if !ok {
			continue
		}
		id, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		maxID, minID = max(maxID, id), min(minID, id)
	}
	return maxID, minID, nil
}

// redoRecord is a parsed record: its payload's body, kind and sequence number.
type redoRecord struct {
	kind byte
	seq  uint64
	body []byte
}

// parseRecords parses the records of one segment. It stops at the first record that is
// cut short or fails its checksum and returns the offset where the good records end.
func parseRecords(data []byte) (recs []redoRecord, good int) {
	for off := 0; ; {
		if len(data)-off < redoHeader {
			return recs, off
		}
		n := int(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n < 9 || n > len(data)-off-redoHeader {
			return recs, off
		}
		p := data[off+redoHeader : off+redoHeader+n]
		if crc32.Checksum(p, redoCRC) != sum {
			return recs, off
		}
		recs = append(recs, redoRecord{kind: p[0], seq: binary.BigEndian.Uint64(p[1:]), body: p[9:]})
		off += redoHeader + n
	}
}

// replaySegments writes the commits of segs (oldest first) that were not cancelled into db.
// A bad record ends the last segment (a write the crash cut short: it is cut off the
// file); anywhere else it is corruption, and an error.
func replaySegments(segs []segmentFile, db *badger.DB) (replayed int, lastSeq uint64, err error) {
	var recs []redoRecord
	for i, seg := range segs {
		data, err := os.ReadFile(seg.path)
		if err != nil {
			return 0, 0, fmt.Errorf("store: redo log: %w", err)
		}
		r, good := parseRecords(data)
		if good < len(data) {
			if i < len(segs)-1 {
				return 0, 0, fmt.Errorf("store: redo log %s is corrupt at byte %d of %d "+
					"(only the last segment may end in a cut-off record)", seg.path, good, len(data))
			}
			// Synced: once a newer segment exists, a torn end here would read as corruption.
			if err := truncateSync(seg.path, int64(good)); err != nil {
				return 0, 0, fmt.Errorf("store: redo log: cut off the torn end of %s: %w", seg.path, err)
			}
		}
		recs = append(recs, r...)
	}
	cancelled := make(map[uint64]bool)
	for _, r := range recs {
		lastSeq = max(lastSeq, r.seq)
		if r.kind == redoKindCancel && len(r.body) >= 8 {
			cancelled[binary.BigEndian.Uint64(r.body)] = true
		}
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for _, r := range recs {
		if r.kind != redoKindCommit || cancelled[r.seq] {
			continue
		}
		for b := r.body; len(b) > 0; {
			k, rest, ok := redoField(b)
			if !ok {
				return 0, 0, fmt.Errorf("store: redo log: commit %d: bad entry", r.seq)
			}
			v, rest, ok := redoField(rest)
			if !ok {
				return 0, 0, fmt.Errorf("store: redo log: commit %d: bad entry", r.seq)
			}
			// The record's memory stays alive until Flush: no copies needed.
			if err := wb.Set(k, v); err != nil {
				return 0, 0, fmt.Errorf("store: redo log: replay commit %d: %w", r.seq, err)
			}
			b = rest
		}
		replayed++
	}
	if err := wb.Flush(); err != nil {
		return 0, 0, fmt.Errorf("store: redo log: replay: %w", err)
	}
	return replayed, lastSeq, nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = fdatasync(f)
	}
	return errors.Join(err, f.Close())
}

// redoField cuts one uvarint-length-prefixed field off b.
func redoField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}
