package zmtp

import "fmt"

// Z85 (rfc.zeromq.org/spec/32): 4 bytes to 5 printable characters, big-endian base 85. CURVE
// keys are 32 bytes, so 40 characters.
const z85Chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

var z85Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := range len(z85Chars) {
		t[z85Chars[i]] = byte(i)
	}
	return t
}()

// z85Encode appends the Z85 text of b (len(b) a multiple of 4) to dst.
func z85Encode(dst, b []byte) []byte {
	for i := 0; i+4 <= len(b); i += 4 {
		v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		var c [5]byte
		for j := 4; j >= 0; j-- {
			c[j] = z85Chars[v%85]
			v /= 85
		}
		dst = append(dst, c[:]...)
	}
	return dst
}

// z85Decode appends the bytes of Z85 text s (len(s) a multiple of 5) to dst.
func z85Decode(dst, s []byte) ([]byte, error) {
	if len(s)%5 != 0 {
		return dst, fmt.Errorf("Z85 text of %d characters, want a multiple of 5", len(s))
	}
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := range 5 {
			d := z85Values[s[i+j]]
			if d == 0xFF {
				return dst, fmt.Errorf("bad Z85 character %q", s[i+j])
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return dst, fmt.Errorf("Z85 group %q out of range", s[i:i+5])
		}
		dst = append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return dst, nil
}
