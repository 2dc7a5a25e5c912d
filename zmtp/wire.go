package zmtp

import (
	"encoding/binary"
	"fmt"
)

// Wire constants of ZMTP 3.x (rfc.zeromq.org/spec/23 and 37).
const (
	greetingSize = 64

	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
	flagsMask   = 0x07 // bits 3-7 are reserved and must be zero

	maxShortFrame = 255
	maxIdentity   = 255
	maxPingCtx    = 16
)

// appendGreeting appends our 64-byte greeting: signature, version 3.1, mechanism, as-server.
func appendGreeting(dst []byte, mech string, asServer bool) []byte {
	var g [greetingSize]byte
	g[0] = 0xFF
	g[9] = 0x7F
	g[10] = 3
	g[11] = 1
	copy(g[12:32], mech)
	if asServer {
		g[32] = 1
	}
	return append(dst, g[:]...)
}

// greeting is a parsed peer greeting.
type greeting struct {
	major, minor byte
	mech         [20]byte
	asServer     bool
}

// mechName returns the mechanism name without its NUL padding.
func (g *greeting) mechName() []byte {
	n := 0
	for n < len(g.mech) && g.mech[n] != 0 {
		n++
	}
	return g.mech[:n]
}

// parseGreeting checks a peer's 64-byte greeting. Versions before 3.0 are refused; a higher
// version is spoken to as 3.1 (the lower version wins, spec 37).
func parseGreeting(b []byte) (greeting, error) {
	var g greeting
	if len(b) < greetingSize {
		return g, fmt.Errorf("%w: short greeting", ErrProtocol)
	}
	if b[0] != 0xFF || b[9]&0x01 != 0x01 {
		return g, fmt.Errorf("%w: bad greeting signature", ErrProtocol)
	}
	g.major, g.minor = b[10], b[11]
	if g.major < 3 {
		return g, fmt.Errorf("%w: unsupported ZMTP version %d.%d", ErrProtocol, g.major, g.minor)
	}
	if g.major > 3 || g.minor > 1 {
		g.major, g.minor = 3, 1
	}
	copy(g.mech[:], b[12:32])
	name := g.mechName()
	for i, c := range g.mech[len(name):] {
		if c != 0 {
			return g, fmt.Errorf("%w: bad mechanism padding at %d", ErrProtocol, len(name)+i)
		}
	}
	if len(name) == 0 {
		return g, fmt.Errorf("%w: empty mechanism", ErrProtocol)
	}
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return g, fmt.Errorf("%w: bad mechanism name", ErrProtocol)
		}
	}
	switch b[32] {
	case 0:
	case 1:
		g.asServer = true
	default:
		return g, fmt.Errorf("%w: bad as-server flag %d", ErrProtocol, b[32])
	}
	return g, nil
}

// appendFrameHeader appends a frame's flags and size.
func appendFrameHeader(dst []byte, flags byte, size int) []byte {
	if size > maxShortFrame {
		dst = append(dst, flags|flagLong)
		return binary.BigEndian.AppendUint64(dst, uint64(size))
	}
	return append(dst, flags, byte(size))
}

// appendCommand encodes a command frame: name-size, name, then the data parts.
func appendCommand(dst []byte, name string, data ...[]byte) []byte {
	size := 1 + len(name)
	for _, d := range data {
		size += len(d)
	}
	dst = appendFrameHeader(dst, flagCommand, size)
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	for _, d := range data {
		dst = append(dst, d...)
	}
	return dst
}

// appendProperty appends one metadata property (name-size, name, 4-byte value-size, value).
func appendProperty(dst []byte, name string, value []byte) []byte {
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(value)))
	return append(dst, value...)
}

// appendMetadata appends the READY / INITIATE metadata of a socket.
func appendMetadata(dst []byte, t SocketType, identity []byte) []byte {
	dst = appendProperty(dst, "Socket-Type", []byte(t.String()))
	if t.sendsIdentity() {
		dst = appendProperty(dst, "Identity", identity)
	}
	return dst
}

// splitCommand splits a command frame body into its name and data.
func splitCommand(body []byte) (name, data []byte, err error) {
	if len(body) < 1 || int(body[0]) > len(body)-1 || body[0] == 0 {
		return nil, nil, fmt.Errorf("%w: malformed command", ErrProtocol)
	}
	n := int(body[0])
	return body[1 : 1+n], body[1+n:], nil
}

// metadata holds the properties of READY / INITIATE that we use.
type metadata struct {
	socketType []byte
	identity   []byte
	hasType    bool
}

// parseMetadata parses a property list; unknown properties are ignored, as the spec asks.
// Property names compare case-insensitively.
func parseMetadata(b []byte) (metadata, error) {
	var md metadata
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return md, fmt.Errorf("%w: malformed metadata", ErrProtocol)
		}
		name := b[1 : 1+n]
		vlen := binary.BigEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if uint64(vlen) > uint64(len(b)) {
			return md, fmt.Errorf("%w: malformed metadata value", ErrProtocol)
		}
		value := b[:vlen]
		b = b[vlen:]
		switch {
		case equalFold(name, "Socket-Type"):
			md.socketType, md.hasType = value, true
		case equalFold(name, "Identity"):
			md.identity = value
		}
	}
	return md, nil
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if d >= 'a' && d <= 'z' {
			d -= 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// isCommand reports whether a command body's name is name.
func isCommand(cmdName []byte, name string) bool { return string(cmdName) == name }
