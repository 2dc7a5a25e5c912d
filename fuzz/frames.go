package fuzz

import "encoding/binary"

// ZMTP 3.1 frame flags (RFC 37).
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// messages splits a ZMTP 3.1 byte stream (what follows the greeting and the handshake) into
// messages, each a list of frames. Command frames (PING, PONG, ...) are skipped, as a socket
// handles them itself. It stops at the first frame that is malformed (reserved flag bits, a
// command with MORE, a size past maxMsg) or cut short, as zmtp closes such a connection; a
// message not completed by the end of the data is dropped. Frames are sub-slices of data.
func messages(data []byte, maxMsg int) [][][]byte {
	var out [][][]byte
	var cur [][]byte
	size := 0
	for len(data) > 0 {
		flags := data[0]
		if flags&^(flagMore|flagLong|flagCommand) != 0 {
			return out
		}
		var n uint64
		switch {
		case flags&flagLong != 0:
			if len(data) < 9 {
				return out
			}
			n = binary.BigEndian.Uint64(data[1:9])
			data = data[9:]
		default:
			if len(data) < 2 {
				return out
			}
			n = uint64(data[1])
			data = data[2:]
		}
		if n > uint64(len(data)) || n > uint64(maxMsg) {
			return out
		}
		body := data[:n]
		data = data[n:]
		if flags&flagCommand != 0 {
			if flags&flagMore != 0 {
				return out
			}
			continue
		}
		size += len(body)
		if size > maxMsg {
			return out
		}
		cur = append(cur, body)
		if flags&flagMore == 0 {
			out = append(out, cur)
			cur, size = nil, 0
		}
	}
	return out
}

// appendFrame appends one data frame (more: another frame of the same message follows).
func appendFrame(dst, body []byte, more bool) []byte {
	var flags byte
	if more {
		flags |= flagMore
	}
	if len(body) > 255 {
		dst = append(dst, flags|flagLong)
		return append(binary.BigEndian.AppendUint64(dst, uint64(len(body))), body...)
	}
	return append(append(dst, flags, byte(len(body))), body...)
}
