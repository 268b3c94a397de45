package wire

// A minimal iterator over JSON text that is already known to be valid (checked by the scan
// of DecodeBatch or DecodeEvent first). It finds the spans of object members without
// allocating: the decoder reads consent objects, and props with more members than the scan
// records, with it.

// skipWS returns the index of the first non-space byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// stringEnd returns the index just past the string starting at b[i] (a quote).
func stringEnd(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return i
}

// eachMember calls fn with the raw key (with its quotes) and raw value of each member of
// the object starting at b[i].
func eachMember(b []byte, i int, fn func(key, val []byte)) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return
	}
	for i < len(b) {
		kend := stringEnd(b, i)
		key := b[i:kend]
		i = skipWS(b, kend)
		i = skipWS(b, i+1) // the colon
		vend := valueEnd(b, i)
		fn(key, b[i:vend])
		i = skipWS(b, vend)
		if i >= len(b) || b[i] != ',' {
			return
		}
		i = skipWS(b, i+1)
	}
}
