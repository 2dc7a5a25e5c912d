package fuzz

import (
	"bytes"
	"encoding/binary"

	"github.com/zerotask/zerotask/zmtp"
)

// ZMTP 3.1 frame flags (RFC 37).
const (
	flagMore = 0x01
	flagLong = 0x02
)

// messages splits a ZMTP 3.1 byte stream (what follows the greeting and the handshake) into
// messages, each a list of frames, through zmtp's own frame reader (zmtp.Decoder: the reader,
// limits and protocol checks a connection uses). Command frames (PING, PONG, ...) are skipped,
// as a socket handles them itself. It stops at the first frame that is malformed (reserved
// flag bits, a command with MORE, a size past maxMsg) or cut short, as zmtp closes such a
// connection; a message not completed by the end of the data is dropped. Frames are copies.
func messages(data []byte, maxMsg int) [][][]byte {
	d := zmtp.NewDecoder(bytes.NewReader(data), int64(maxMsg))
	defer d.Close()
	m := zmtp.AcquireMsg()
	defer m.Release()
	var out [][][]byte
	for d.Next(m) == nil {
		msg := make([][]byte, len(m.Frames))
		for i, f := range m.Frames {
			msg[i] = bytes.Clone(f)
			if msg[i] == nil {
				msg[i] = []byte{}
			}
		}
		out = append(out, msg)
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
