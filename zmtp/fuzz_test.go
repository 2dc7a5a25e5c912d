package zmtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// pieceReader returns its pieces one after the other, never more than a piece per Read, so
// the parser sees the input split where the test chose.
type pieceReader struct{ pieces [][]byte }

func (r *pieceReader) Read(p []byte) (int, error) {
	for len(r.pieces) > 0 && len(r.pieces[0]) == 0 {
		r.pieces = r.pieces[1:]
	}
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces[0] = r.pieces[0][n:]
	return n, nil
}

// splitPoints returns where to split an input: every point for short inputs, a spread of
// points for long ones (so one fuzz input stays cheap).
func splitPoints(n int) []int {
	if n <= 300 {
		pts := make([]int, n+1)
		for i := range pts {
			pts[i] = i
		}
		return pts
	}
	var pts []int
	for i := 0; i <= 64; i++ {
		pts = append(pts, i, n-i)
	}
	for i := 64; i < n-64; i += n / 64 {
		pts = append(pts, i)
	}
	return pts
}

const fuzzMaxMsg = 4096

// parseAll reads messages until an error and returns a summary of what was read and the
// final error, checking the reader's invariants on the way.
func parseAll(t *testing.T, r io.Reader) ([]string, error) {
	fr := newFrameReader(r, fuzzMaxMsg)
	defer fr.release()
	var out []string
	for {
		m := AcquireMsg()
		kind, err := fr.readMsg(m)
		if cap(m.buf) > 2*fuzzMaxMsg+4096 {
			t.Fatalf("message buffer grew to %d with a %d limit", cap(m.buf), fuzzMaxMsg)
		}
		if err != nil {
			m.Release()
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrProtocol) {
				t.Fatalf("error is not EOF nor a protocol error: %v", err)
			}
			return out, err
		}
		if m.Size() > fuzzMaxMsg {
			t.Fatalf("message of %d bytes passed a %d limit", m.Size(), fuzzMaxMsg)
		}
		out = append(out, string(rune('0'+kind))+string(bytes.Join(m.Frames, []byte{0xFF})))
		m.Release()
	}
}

// FuzzFrameReader feeds any bytes to the frame reader, whole and split in two at every point:
// it must not panic, must not allocate past the limit, must report only protocol errors or
// EOF, and must read the same messages however the input is split.
func FuzzFrameReader(f *testing.F) {
	f.Add(frameBytes(0, []byte("hello")))
	f.Add(concat(frameBytes(flagMore, []byte("a")), frameBytes(flagMore, nil), frameBytes(0, []byte("c"))))
	f.Add(frameBytes(0, bytes.Repeat([]byte("L"), 300)))
	f.Add(appendCommand(nil, "PING", []byte{0, 10}, []byte("ctx")))
	f.Add(appendCommand(nil, "SUBSCRIBE", []byte("topic")))
	f.Add(longHeader(0, 1<<63))
	f.Add(longHeader(0, fuzzMaxMsg+1))
	f.Add(concat(longHeader(flagMore, 4000), bytes.Repeat([]byte("x"), 4000), frameBytes(0, bytes.Repeat([]byte("y"), 97))))
	f.Add([]byte{0x80, 1, 'x'})
	f.Add([]byte{flagCommand | flagMore, 1, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := parseAll(t, bytes.NewReader(data))
		for _, i := range splitPoints(len(data)) {
			got, err := parseAll(t, &pieceReader{pieces: [][]byte{data[:i:i], data[i:]}})
			if len(got) != len(want) || (err == nil) != (wantErr == nil) {
				t.Fatalf("split at %d: %d messages (err %v), whole: %d (err %v)", i, len(got), err, len(want), wantErr)
			}
			for k := range got {
				if got[k] != want[k] {
					t.Fatalf("split at %d: message %d differs", i, k)
				}
			}
		}
	})
}

// FuzzGreeting feeds any bytes to the greeting and handshake parser, as a ROUTER with NULL
// and as a PLAIN server, whole and split in two at every point: no panic, every error wraps
// ErrHandshake, and the outcome does not depend on the split.
func FuzzGreeting(f *testing.F) {
	ready := appendCommand(nil, "READY", appendMetadata(nil, Dealer, []byte("id")))
	f.Add(concat(rawGreeting(1), ready))
	f.Add(concat(rawGreeting(0), ready, frameBytes(0, []byte("after"))))
	hello := appendCommand(nil, "HELLO", []byte("\x05admin\x06secret"))
	initiate := appendCommand(nil, "INITIATE", appendMetadata(nil, Dealer, nil))
	f.Add(concat(appendGreeting(nil, "PLAIN", false), hello, initiate))
	f.Add(concat(appendGreeting(nil, "PLAIN", false), appendCommand(nil, "HELLO", []byte("\x05admin\x05wrong"))))
	f.Add(concat(rawGreeting(1), appendCommand(nil, "READY", appendProperty(nil, "Socket-Type", []byte("PUB")))))
	f.Add(concat(rawGreeting(1), appendCommand(nil, "ERROR", []byte("\x03bad"))))
	f.Add(appendGreeting(nil, "CURVE", true))
	f.Add(rawGreeting(1)[:20])
	auth := PlainCredentials(map[string]string{"admin": "secret"})
	mechs := []Mechanism{Null(), PlainServer(auth)}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mech := range mechs {
			run := func(r io.Reader) (peerInfo, error) {
				fr := newFrameReader(r, fuzzMaxMsg)
				defer fr.release()
				info, err := runHandshake(io.Discard, fr, Router, nil, mech, &net.TCPAddr{})
				if err != nil && !errors.Is(err, ErrHandshake) {
					t.Fatalf("handshake error does not wrap ErrHandshake: %v", err)
				}
				if err == nil && !Router.compatible(info.typeName) {
					t.Fatalf("handshake accepted peer type %q", info.typeName)
				}
				return info, err
			}
			want, wantErr := run(bytes.NewReader(data))
			for _, i := range splitPoints(len(data)) {
				got, err := run(&pieceReader{pieces: [][]byte{data[:i:i], data[i:]}})
				if (err == nil) != (wantErr == nil) || !bytes.Equal(got.identity, want.identity) {
					t.Fatalf("%s split at %d: err %v, whole: err %v", mech.Name(), i, err, wantErr)
				}
			}
		}
	})
}
