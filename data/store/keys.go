package store

import (
	"encoding/binary"
	"fmt"
)

// Key namespaces (first byte of every key). See the package documentation.
const (
	nsEvent         byte = 0x01
	nsDedupe        byte = 0x02
	nsSession       byte = 0x03
	nsClient        byte = 0x04
	nsSessionByTime byte = 0x05
	nsVisitorSess   byte = 0x06
	nsConversion    byte = 0x07
	nsLinkByAnon    byte = 0x08
	nsLinkByUser    byte = 0x09
	nsVisitor       byte = 0x0A
	nsCounter       byte = 0x0B

	// Models and decisions (models.go, decisions.go; 0x13 and 0x14 are declared there).
	nsModelArtifact    byte = 0x10
	nsModelPromotion   byte = 0x11
	nsDecisionLog      byte = 0x12
	nsReservedLastData byte = 0x1F
	nsMeta             byte = 0xFF
)

// appendStr appends a length-prefixed string, which keeps prefixes unambiguous whatever bytes
// the string holds.
func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTS appends ts big-endian with the sign bit flipped, so byte order is numeric order.
func appendTS(b []byte, ts int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ts)^(1<<63))
}

func decodeTS(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// readStr reads a length-prefixed string from b.
func readStr(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, fmt.Errorf("store: corrupt string")
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// key builds ns|s1|s2|... with length-prefixed strings.
func key(ns byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 2
	}
	b := make([]byte, 1, n+16)
	b[0] = ns
	for _, p := range parts {
		b = appendStr(b, p)
	}
	return b
}

func eventKey(site, session string, ts int64, eventID string) []byte {
	b := make([]byte, 0, 1+len(site)+len(session)+2*binary.MaxVarintLen64+8+len(eventID))
	b = append(b, nsEvent)
	b = appendStr(b, site)
	b = appendStr(b, session)
	b = appendTS(b, ts)
	return append(b, eventID...)
}

func sessionByTimeKey(site string, ts int64, session string) []byte {
	b := key(nsSessionByTime, site)
	b = appendTS(b, ts)
	return append(b, session...)
}

// prefixEnd returns the smallest key greater than every key with the given prefix.
func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] < 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}
