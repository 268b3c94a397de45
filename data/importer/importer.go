// Package importer owns the import of historical events from files: JSON Lines (one wire
// event per line), CSV (one event per row, props in "props.<key>" columns) and the "otto"
// preset for the OTTO e-commerce sessions sample (clicks, carts and orders mapped onto
// page_view, micro_conversion and macro_conversion). Each row is decoded and validated with
// the same rules as HTTP ingest (package wire); a bad row is rejected with its line number
// and reason and the import goes on. Valid events are handed to a Sink in batches.
//
// It imports data/wire and features/ only; it must not import badger, echo, model/,
// training/ or serve/ (the caller passes the store as a Sink).
package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
)

// Format is the layout of an import file.
type Format string

// The supported formats. The empty Format means "detect from the content".
const (
	JSONL Format = "jsonl"
	CSV   Format = "csv"
	Otto  Format = "otto"
)

// Errors of Import.
var (
	ErrFormat = errors.New("importer: unknown format")
	ErrHeader = errors.New("importer: bad CSV header")
	ErrSink   = errors.New("importer: sink failed")
)

// MaxRejections is how many rejected rows a Report lists.
const MaxRejections = 100

// MaxLine is the longest JSON Lines line accepted (longer lines are rejected).
const MaxLine = 1 << 20

// ImportMaxPast is the default MaxPast of imports: historical data is the point, so only
// timestamps before 2000 (rejected by wire) or in the future are refused.
const ImportMaxPast = 100 * 365 * 24 * time.Hour

// Options configure an import.
type Options struct {
	Site           string           // the site the events belong to (for the caller's sink)
	Format         Format           // "" detects from the content (see Detect); CSV with the OTTO header reads as Otto
	Now            func() time.Time // for the future-timestamp check; nil means time.Now
	Limits         wire.Limits      // zero fields take the wire defaults, MaxPast ImportMaxPast
	ConsentDefault bool             // consent of events that do not carry one
	BatchSize      int              // events per Sink call (default 500)
	Progress       func(Progress)   // called after each batch and at the end; may be nil
}

// Progress is reported while importing.
type Progress struct {
	Bytes, Rows, Imported, Duplicates, Rejected int64
}

// Rejection is one rejected row.
type Rejection struct {
	Line   int    // 1-based line number in the file
	Field  string // the wire field at fault ("" when the row as a whole is bad)
	Reason string
}

func (r Rejection) String() string {
	if r.Field == "" {
		return fmt.Sprintf("line %d: %s", r.Line, r.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", r.Line, r.Field, r.Reason)
}

// Report summarises an import.
type Report struct {
	Rows       int64       // data rows read (not counting a header or blank lines)
	Imported   int64       // events newly stored
	Duplicates int64       // events already stored (same site and event_id)
	Unlogged   int64       // events accepted but not logged (no consent)
	Rejected   int64       // rows rejected
	Rejections []Rejection // the first MaxRejections rejected rows
}

// Sink stores a batch of valid events, reporting how many were new, already present, and
// accepted without being logged.
type Sink func(ctx context.Context, evs []features.Event) (stored, duplicates, unlogged int, err error)

// FormatFromName guesses the format from a file name's extension: ".jsonl", ".ndjson" and
// ".json" are JSONL, ".csv" is CSV or Otto (decided from the header), others "".
func FormatFromName(name string) Format {
	switch strings.ToLower(filepath.Ext(strings.TrimSuffix(name, ".gz"))) {
	case ".jsonl", ".ndjson", ".json":
		return JSONL
	case ".csv":
		return CSV
	}
	return ""
}

// ottoHeader is the header of the OTTO sessions CSV.
const ottoHeader = "session,aid,ts,type"

// Detect guesses the format from the start of a file: a '{' means JSONL, the OTTO header
// means Otto, anything else CSV.
func Detect(head []byte) Format {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	t := bytes.TrimLeft(head, " \t\r\n")
	if len(t) > 0 && t[0] == '{' {
		return JSONL
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	if strings.TrimSpace(string(line)) == ottoHeader {
		return Otto
	}
	return CSV
}

// Import reads events from r and hands the valid ones to sink in batches. It returns an
// error only when the import cannot go on (unknown format, bad header, read or sink error,
// cancelled context); the report then covers what was done.
func Import(ctx context.Context, r io.Reader, opts Options, sink Sink) (Report, error) {
	im := newImporter(ctx, r, opts, sink)
	br := bufio.NewReaderSize(im.counter, 64<<10)
	format := opts.Format
	if format == "" || format == CSV {
		head, _ := br.Peek(512)
		if d := Detect(head); format == "" || d == Otto {
			format = d
		}
	}
	var err error
	switch format {
	case JSONL:
		err = im.jsonl(br)
	case CSV:
		err = im.csv(br, false)
	case Otto:
		err = im.csv(br, true)
	default:
		return Report{}, fmt.Errorf("%w %q (valid: jsonl, csv, otto)", ErrFormat, format)
	}
	if err == nil {
		err = im.flush()
	}
	im.progress()
	return im.rep, err
}

type importer struct {
	ctx     context.Context
	opts    Options
	now     time.Time
	lim     wire.Limits
	sink    Sink
	counter *countingReader
	batch   []features.Event
	rep     Report
}

func newImporter(ctx context.Context, r io.Reader, opts Options, sink Sink) *importer {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	lim := opts.Limits
	if lim.MaxPast <= 0 {
		lim.MaxPast = ImportMaxPast
	}
	return &importer{
		ctx: ctx, opts: opts, now: now(), lim: lim, sink: sink,
		counter: &countingReader{r: r},
		batch:   make([]features.Event, 0, opts.BatchSize),
	}
}

func (im *importer) reject(line int, field, reason string) {
	im.rep.Rejected++
	if len(im.rep.Rejections) < MaxRejections {
		im.rep.Rejections = append(im.rep.Rejections, Rejection{Line: line, Field: field, Reason: reason})
	}
}

func (im *importer) rejectAll(line int, errs []wire.FieldError) {
	fields := make([]string, 0, len(errs))
	for _, e := range errs {
		fields = append(fields, e.Field+": "+e.Reason)
	}
	im.rep.Rejected++
	if len(im.rep.Rejections) < MaxRejections {
		r := Rejection{Line: line, Field: errs[0].Field, Reason: errs[0].Reason}
		if len(errs) > 1 {
			r.Field, r.Reason = "", strings.Join(fields, "; ")
		}
		im.rep.Rejections = append(im.rep.Rejections, r)
	}
}

func (im *importer) add(ev features.Event) error {
	im.batch = append(im.batch, ev)
	if len(im.batch) >= im.opts.BatchSize {
		return im.flush()
	}
	return nil
}

func (im *importer) flush() error {
	if err := im.ctx.Err(); err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	if len(im.batch) == 0 {
		return nil
	}
	stored, dups, unlogged, err := im.sink(im.ctx, im.batch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSink, err)
	}
	im.rep.Imported += int64(stored)
	im.rep.Duplicates += int64(dups)
	im.rep.Unlogged += int64(unlogged)
	im.batch = im.batch[:0]
	im.progress()
	return nil
}

func (im *importer) progress() {
	if im.opts.Progress != nil {
		im.opts.Progress(Progress{
			Bytes: im.counter.n, Rows: im.rep.Rows, Imported: im.rep.Imported,
			Duplicates: im.rep.Duplicates, Rejected: im.rep.Rejected,
		})
	}
}

// jsonl reads one wire event per line.
func (im *importer) jsonl(br *bufio.Reader) error {
	line := 0
	for {
		b, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		line++
		switch {
		case err == errLineTooLong:
			im.rep.Rows++
			im.reject(line, "", fmt.Sprintf("line longer than %d bytes", MaxLine))
			continue
		case err != nil:
			return fmt.Errorf("importer: read line %d: %w", line, err)
		case len(bytes.TrimSpace(b)) == 0:
			continue
		}
		im.rep.Rows++
		ev, errs := wire.DecodeEvent(b, im.now, im.lim, im.opts.ConsentDefault)
		if errs != nil {
			im.rejectAll(line, errs)
		} else if err := im.add(ev); err != nil {
			return err
		}
		if line%1024 == 0 {
			if err := im.ctx.Err(); err != nil {
				return fmt.Errorf("importer: %w", err)
			}
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its end (nil error, possibly empty), io.EOF when
// there are no more lines, or errLineTooLong for a line longer than MaxLine (skipped).
// The line is valid until the next call.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > MaxLine {
			for err == bufio.ErrBufferFull { // drop the rest of the line
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			buf = append(buf, frag...)
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if buf != nil {
			frag = append(buf, frag...)
		}
		if err == io.EOF && len(frag) == 0 {
			return nil, io.EOF
		}
		return bytes.TrimRight(frag, "\r\n"), nil
	}
}

// csv reads a CSV file with a header; otto selects the OTTO preset.
func (im *importer) csv(br *bufio.Reader, otto bool) error {
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHeader, err)
	}
	header = append([]string(nil), header...)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	var row func(line int, rec []string) error
	if otto {
		if strings.Join(header, ",") != ottoHeader {
			return fmt.Errorf("%w: the otto preset expects %q, got %q", ErrHeader, ottoHeader, strings.Join(header, ","))
		}
		row = im.ottoRow(map[string]int{})
	} else {
		cols, err := parseHeader(header)
		if err != nil {
			return err
		}
		row = im.csvRow(cols)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("importer: read: %w", err)
			}
			im.rep.Rows++
			im.reject(pe.StartLine, "", pe.Err.Error())
			continue
		}
		line, _ := cr.FieldPos(0) // valid only after a successful Read
		im.rep.Rows++
		if err := row(line, rec); err != nil {
			return err
		}
		if im.rep.Rows%1024 == 0 {
			if err := im.ctx.Err(); err != nil {
				return fmt.Errorf("importer: %w", err)
			}
		}
	}
}

// csvColumns maps wire fields and props keys to column indices.
type csvColumns struct {
	field map[string]int
	props map[string]int
}

var csvFields = []string{"event_id", "session_id", "anonymous_id", "user_id", "type", "timestamp", "name", "value", "consent"}

func parseHeader(h []string) (csvColumns, error) {
	c := csvColumns{field: map[string]int{}, props: map[string]int{}}
	var errs []error
	for i, name := range h {
		name = strings.TrimSpace(name)
		if k, ok := strings.CutPrefix(name, "props."); ok {
			if k == "" {
				errs = append(errs, fmt.Errorf("%w: column %d: empty props key", ErrHeader, i+1))
			} else if _, dup := c.props[k]; dup {
				errs = append(errs, fmt.Errorf("%w: column %d: duplicate column %q", ErrHeader, i+1, name))
			}
			c.props[k] = i
			continue
		}
		known := false
		for _, f := range csvFields {
			known = known || f == name
		}
		if !known {
			errs = append(errs, fmt.Errorf("%w: column %d: unknown column %q (valid: %s, props.<key>)", ErrHeader, i+1, name, strings.Join(csvFields, ", ")))
			continue
		}
		if _, dup := c.field[name]; dup {
			errs = append(errs, fmt.Errorf("%w: column %d: duplicate column %q", ErrHeader, i+1, name))
		}
		c.field[name] = i
	}
	for _, req := range []string{"event_id", "session_id", "anonymous_id", "type", "timestamp"} {
		if _, ok := c.field[req]; !ok {
			errs = append(errs, fmt.Errorf("%w: missing column %q", ErrHeader, req))
		}
	}
	return c, errors.Join(errs...)
}

// csvRow converts a row to a wire event object and decodes it with the wire rules, so CSV
// and HTTP accept exactly the same events.
func (im *importer) csvRow(c csvColumns) func(int, []string) error {
	obj := map[string]any{}
	props := map[string]any{}
	return func(line int, rec []string) error {
		clear(obj)
		clear(props)
		for name, i := range c.field {
			v := rec[i]
			if v == "" {
				continue
			}
			switch name {
			case "timestamp":
				if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
					obj[name] = ms
				} else {
					obj[name] = v
				}
			case "value":
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
					im.reject(line, "value", fmt.Sprintf("must be a number, got %q", trunc(v)))
					return nil
				}
				obj[name] = json.Number(strconv.FormatFloat(f, 'g', -1, 64))
			case "consent":
				b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
				if err != nil {
					im.reject(line, "consent", fmt.Sprintf("must be true or false, got %q", trunc(v)))
					return nil
				}
				obj[name] = b
			default:
				obj[name] = v
			}
		}
		for k, i := range c.props {
			if rec[i] != "" {
				props[k] = rec[i]
			}
		}
		if len(props) > 0 {
			obj["props"] = props
		}
		// json.Marshal would replace invalid UTF-8: check the raw cells first.
		if bad := invalidCell(rec, c); bad != "" {
			im.reject(line, bad, "invalid UTF-8")
			return nil
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			im.reject(line, "", err.Error())
			return nil
		}
		ev, errs := wire.DecodeEvent(raw, im.now, im.lim, im.opts.ConsentDefault)
		if errs != nil {
			im.rejectAll(line, errs)
			return nil
		}
		return im.add(ev)
	}
}

// invalidCell returns the field of the first cell that is not valid UTF-8.
func invalidCell(rec []string, c csvColumns) string {
	for name, i := range c.field {
		if !validUTF8(rec[i]) {
			return name
		}
	}
	for k, i := range c.props {
		if !validUTF8(rec[i]) {
			return "props." + k
		}
	}
	return ""
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ottoRow maps an OTTO row (session, aid, ts in Unix ms, type) to an event.
func (im *importer) ottoRow(seen map[string]int) func(int, []string) error {
	return func(line int, rec []string) error {
		session, aid, ts, typ := rec[0], rec[1], rec[2], rec[3]
		if _, err := strconv.ParseUint(session, 10, 64); err != nil {
			im.reject(line, "session", fmt.Sprintf("must be a non-negative integer, got %q", trunc(session)))
			return nil
		}
		if _, err := strconv.ParseUint(aid, 10, 64); err != nil {
			im.reject(line, "aid", fmt.Sprintf("must be a non-negative integer, got %q", trunc(aid)))
			return nil
		}
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			im.reject(line, "ts", fmt.Sprintf("must be Unix milliseconds, got %q", trunc(ts)))
			return nil
		}
		id := "otto-" + session
		ev := features.Event{SessionID: id, AnonymousID: id, TS: ms, Consent: im.opts.ConsentDefault}
		switch typ {
		case "clicks":
			ev.Type = features.PageView
			ev.Props = map[string]string{"path": "/product/" + aid, "page_group": "product"}
		case "carts":
			ev.Type, ev.Name = features.MicroConversion, "add_to_cart"
			ev.Props = map[string]string{"product": aid}
		case "orders":
			ev.Type, ev.Name = features.MacroConversion, "purchase"
			ev.Props = map[string]string{"product": aid}
		default:
			im.reject(line, "type", fmt.Sprintf("unknown OTTO type %q (valid: clicks, carts, orders)", trunc(typ)))
			return nil
		}
		base := id + "-" + ts + "-" + aid + "-" + typ
		n := seen[base]
		seen[base] = n + 1
		ev.EventID = base + "-" + strconv.Itoa(n)
		if errs := wire.Validate(&ev, im.now, im.lim); errs != nil {
			im.rejectAll(line, errs)
			return nil
		}
		return im.add(ev)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
