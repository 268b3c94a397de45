package features

import (
	"encoding/binary"
	"fmt"
	"math"
)

// stateEncoding is the version byte of the State encoding. Bump it on any layout change.
const stateEncoding = 1

// State flag bits.
const (
	flagCartProp = 1 << iota
	flagConverted
	flagIdentified
	flagDevice
	flagLanding
)

// AppendBinary appends the binary encoding of st to b: a version byte, the schema fingerprint
// prefix, then the fields as varints (floats as their IEEE bits, so a round trip is exact).
// A fresh session state takes about 40 bytes plus one byte per action and 8 per distinct page.
func (st *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateEncoding)
	b = binary.LittleEndian.AppendUint64(b, st.fp)

	h := &st.hist
	b = binary.AppendVarint(b, int64(h.Sessions7d))
	b = binary.AppendVarint(b, int64(h.Sessions30d))
	b = binary.AppendVarint(b, h.LastSessionTS)
	b = binary.AppendVarint(b, int64(h.Conversions))
	b = binary.AppendVarint(b, h.LastConversionTS)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.Monetary))

	b = binary.AppendUvarint(b, uint64(st.events))
	b = binary.AppendVarint(b, st.startTS)
	b = binary.AppendVarint(b, st.maxTS-st.startTS) // small; may be negative only if corrupt
	b = binary.AppendVarint(b, st.activeMS)
	b = binary.AppendVarint(b, st.engagedMS)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.maxScroll))
	for _, c := range [...]uint32{st.pageViews, st.clicks, st.exposures, st.errors, st.errClient, st.errForm, st.cartAdds} {
		b = binary.AppendUvarint(b, uint64(c))
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.cartValue))
	b = binary.AppendVarint(b, st.cartPropTS)

	var flags byte
	for bit, on := range [...]bool{st.hasCartProp, st.converted, st.identd, st.hasDev, st.hasLanding} {
		if on {
			flags |= 1 << bit
		}
	}
	b = append(b, flags, st.device, st.channel)
	b = binary.AppendVarint(b, st.deviceTS)
	b = binary.AppendVarint(b, st.landingTS)
	for _, hv := range [...]uint64{st.srcH, st.medH, st.campH, st.grpH} {
		b = binary.LittleEndian.AppendUint64(b, hv)
	}

	b = append(b, st.nPages)
	for _, p := range st.pages[:st.nPages] {
		b = binary.LittleEndian.AppendUint64(b, p)
	}
	b = binary.AppendUvarint(b, uint64(len(st.actions)))
	for _, c := range st.actions {
		b = binary.AppendUvarint(b, uint64(c))
	}
	return b, nil
}

// decoder reads the encoding, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadState, what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > math.MaxUint32 {
		d.fail("bad counter")
		return 0
	}
	d.b = d.b[n:]
	return uint32(v)
}

func (d *decoder) int() int {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("history count out of range")
	}
	return int(v)
}

// UnmarshalBinary decodes a state written by AppendBinary, replacing st. It reuses st's action
// slice when large enough. An unknown encoding version is ErrSchemaMismatch; a truncated or
// corrupt encoding is ErrBadState.
func (st *State) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("features: decode state: %w: empty", ErrBadState)
	}
	if b[0] != stateEncoding {
		return fmt.Errorf("features: decode state: %w: encoding version %d, want %d", ErrSchemaMismatch, b[0], stateEncoding)
	}
	d := decoder{b: b[1:]}
	var n State
	n.fp = d.u64()
	n.hist.Sessions7d = d.int()
	n.hist.Sessions30d = d.int()
	n.hist.LastSessionTS = d.varint()
	n.hist.Conversions = d.int()
	n.hist.LastConversionTS = d.varint()
	n.hist.Monetary = math.Float64frombits(d.u64())

	n.events = d.u32()
	n.startTS = d.varint()
	n.maxTS = n.startTS + d.varint()
	n.activeMS = d.varint()
	n.engagedMS = d.varint()
	n.maxScroll = math.Float64frombits(d.u64())
	for _, p := range [...]*uint32{&n.pageViews, &n.clicks, &n.exposures, &n.errors, &n.errClient, &n.errForm, &n.cartAdds} {
		*p = d.u32()
	}
	n.cartValue = math.Float64frombits(d.u64())
	n.cartPropTS = d.varint()

	flags := d.byte()
	n.hasCartProp = flags&flagCartProp != 0
	n.converted = flags&flagConverted != 0
	n.identd = flags&flagIdentified != 0
	n.hasDev = flags&flagDevice != 0
	n.hasLanding = flags&flagLanding != 0
	n.device = d.byte()
	n.channel = d.byte()
	if n.device >= numDevices || n.channel >= numChannels {
		d.fail("device or channel out of range")
	}
	n.deviceTS = d.varint()
	n.landingTS = d.varint()
	n.srcH, n.medH, n.campH, n.grpH = d.u64(), d.u64(), d.u64(), d.u64()

	n.nPages = d.byte()
	if n.nPages > MaxUniquePages {
		d.fail("too many pages")
	}
	for i := 0; i < int(n.nPages) && d.err == nil; i++ {
		n.pages[i] = d.u64()
		if i > 0 && n.pages[i] <= n.pages[i-1] {
			d.fail("page set not sorted")
		}
	}
	na := d.u32()
	if d.err == nil && uint64(na) > uint64(len(d.b)) { // each counter takes at least one byte
		d.fail("action count exceeds input")
	}
	// Validate the counters before writing any into st's reusable slice, so a failed decode
	// leaves st untouched.
	counters := d.b
	for i := uint32(0); i < na && d.err == nil; i++ {
		d.u32()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("features: decode state: %w", d.err)
	}
	n.actions = st.actions[:0]
	if cap(n.actions) < int(na) || n.actions == nil {
		n.actions = make([]uint32, 0, na)
	}
	d.b = counters
	for i := uint32(0); i < na; i++ {
		n.actions = append(n.actions, d.u32())
	}
	*st = n
	return nil
}
