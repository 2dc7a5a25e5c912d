package zmtp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestDecoder: the connection-less decoder reads the frames a connection would, skips
// commands, and stops on what would close a connection.
func TestDecoder(t *testing.T) {
	frame := func(dst []byte, flags byte, body []byte) []byte {
		if len(body) > 255 {
			dst = binary.BigEndian.AppendUint64(append(dst, flags|flagLong), uint64(len(body)))
			return append(dst, body...)
		}
		return append(append(dst, flags, byte(len(body))), body...)
	}
	long := bytes.Repeat([]byte{'x'}, 300)
	stream := frame(nil, flagMore, []byte("a"))
	stream = frame(stream, 0, long)
	stream = frame(stream, flagCommand, []byte("\x04PING\x00\x00"))
	stream = frame(stream, 0, []byte("b"))
	tests := []struct {
		name string
		data []byte
		max  int64
		want string
		err  error
	}{
		{"two messages, a command skipped", stream, 0, "[[a 300] [b]]", io.EOF},
		{"cut inside a message", stream[:len(stream)-1], 0, "[[a 300]]", io.ErrUnexpectedEOF},
		{"reserved flag bits", []byte{0x08, 0x01, 'x'}, 0, "[]", ErrProtocol},
		{"command with MORE", []byte{0x05, 0x00}, 0, "[]", ErrProtocol},
		{"frame at the limit", frame(nil, 0, long), 300, "[[300]]", io.EOF},
		{"frame one past the limit", frame(nil, 0, long), 299, "[]", ErrMsgTooLarge},
		{"message past the limit", frame(frame(nil, flagMore, long[:200]), 0, long[:200]), 300, "[]", ErrMsgTooLarge},
		{"2^63 bytes announced", append([]byte{flagLong}, 0x80, 0, 0, 0, 0, 0, 0, 0), 0, "[]", ErrMsgTooLarge},
		{"empty", nil, 0, "[]", io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(tt.data), tt.max)
			defer d.Close()
			m := AcquireMsg()
			defer m.Release()
			got := [][]string{}
			var err error
			for {
				if err = d.Next(m); err != nil {
					break
				}
				var fs []string
				for _, f := range m.Frames {
					if len(f) > 10 {
						fs = append(fs, fmt.Sprint(len(f)))
					} else {
						fs = append(fs, string(f))
					}
				}
				got = append(got, fs)
			}
			if fmt.Sprint(got) != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("got %v, %v; want %s, %v", got, err, tt.want, tt.err)
			}
		})
	}
	d := NewDecoder(bytes.NewReader(nil), 0)
	d.Close()
	if err := d.Next(AcquireMsg()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
}
