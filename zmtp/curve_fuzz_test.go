package zmtp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// Fuzz targets for CURVE: the handshake state machine fed any byte stream from either side
// (HELLO, WELCOME, INITIATE, READY and ERROR in any order and shape), the insides of the boxes
// a fuzzer cannot forge (INITIATE's and READY's plaintext, sealed by a harness that holds the
// keys), and the MESSAGE reader. None may panic, and every failure is a handshake or protocol
// error.

// fuzzKeys are fixed keys, so that seeds built with them stay valid across runs.
var fuzzServerKeys, fuzzClientKeys = func() (CurveKeyPair, CurveKeyPair) {
	var s, c CurveKey
	for i := range s {
		s[i], c[i] = byte(i+1), byte(200-i)
	}
	sk, _ := CurveKeyPairFromSecret(s)
	ck, _ := CurveKeyPairFromSecret(c)
	return sk, ck
}()

func checkHandshakeErr(t *testing.T, err error) {
	if err != nil && !errors.Is(err, ErrHandshake) {
		t.Fatalf("handshake error does not wrap ErrHandshake: %v", err)
	}
}

// FuzzCurveServerStream: any bytes after the greeting, as a client would send them, to our
// CURVE server.
func FuzzCurveServerStream(f *testing.F) {
	c := &rawCurveClient{server: fuzzServerKeys, own: fuzzClientKeys, nonce: 1}
	c.cpub, c.csec, _ = box.GenerateKey(rand.Reader)
	hello := appendCommand(nil, "HELLO", c.hello())
	f.Add(concat(appendGreeting(nil, "CURVE", false), hello))
	f.Add(concat(appendGreeting(nil, "CURVE", false), hello, appendCommand(nil, "INITIATE", make([]byte, curveInitiateMin))))
	f.Add(concat(appendGreeting(nil, "CURVE", false), appendCommand(nil, "HELLO", make([]byte, curveHelloSize))))
	f.Add(concat(appendGreeting(nil, "CURVE", false), appendCommand(nil, "ERROR", []byte("\x03400"))))
	mech := CurveServer(fuzzServerKeys, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), fuzzMaxMsg)
		defer fr.release()
		_, err := runHandshake(io.Discard, fr, Router, nil, mech, &net.TCPAddr{})
		checkHandshakeErr(t, err)
	})
}

// FuzzCurveClientStream: any bytes after the greeting, as a server would send them (WELCOME,
// READY, ERROR...), to our CURVE client.
func FuzzCurveClientStream(f *testing.F) {
	g := appendGreeting(nil, "CURVE", true)
	f.Add(concat(g, appendCommand(nil, "WELCOME", make([]byte, curveWelcomeSize))))
	f.Add(concat(g, appendCommand(nil, "WELCOME", make([]byte, curveWelcomeSize)), appendCommand(nil, "READY", make([]byte, 40))))
	f.Add(concat(g, appendCommand(nil, "ERROR", []byte("\x03400"))))
	f.Add(concat(g, appendCommand(nil, "READY", nil)))
	mech := CurveClient(fuzzServerKeys.Public, fuzzClientKeys)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), fuzzMaxMsg)
		defer fr.release()
		_, err := runHandshake(io.Discard, fr, Dealer, []byte("id"), mech, &net.TCPAddr{})
		checkHandshakeErr(t, err)
	})
}

// FuzzCurveInitiate: a real handshake with our server whose INITIATE box holds any plaintext
// (client key, vouch nonce, vouch, metadata), and whose cookie may be altered.
func FuzzCurveInitiate(f *testing.F) {
	good := func(md []byte) []byte { // a well-formed plaintext is built by the harness: marker 0
		return append([]byte{0}, md...)
	}
	f.Add(good(appendMetadata(nil, Dealer, []byte("x"))), uint8(0))
	f.Add(good(appendMetadata(nil, Pub, nil)), uint8(0))
	f.Add(good([]byte{11, 'S'}), uint8(0))
	f.Add(append([]byte{1}, make([]byte, 128)...), uint8(0))
	f.Add(good(appendMetadata(nil, Dealer, nil)), uint8(7))
	f.Fuzz(func(t *testing.T, plain []byte, cookieFlip uint8) {
		if len(plain) == 0 {
			return
		}
		srv, cli := net.Pipe()
		defer srv.Close()
		defer cli.Close()
		_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
		_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
		done := make(chan error, 1)
		go func() {
			fr := newFrameReader(srv, fuzzMaxMsg)
			defer fr.release()
			_, err := runHandshake(srv, fr, Router, nil, CurveServer(fuzzServerKeys, nil), &net.TCPAddr{})
			srv.Close()
			done <- err
		}()
		c := &rawCurveClient{t: t, nc: cli, fr: newFrameReader(cli, -1), server: fuzzServerKeys, own: fuzzClientKeys, nonce: 1, vouchTo: fuzzServerKeys.Public}
		defer c.fr.release()
		c.cpub, c.csec, _ = box.GenerateKey(rand.Reader)
		// net.Pipe does not buffer: read the server's greeting before writing ours.
		var g [greetingSize]byte
		if c.fr.readFull(g[:]) == nil && writeOK(cli, appendGreeting(nil, "CURVE", false)) {
			c.send("HELLO", c.hello())
			c.welcome()
			var init []byte
			if plain[0] == 0 {
				init = c.initiate(plain[1:]) // valid key, vouch; fuzzed metadata
			} else {
				out := append(append([]byte(nil), c.cookie...), make([]byte, 8)...)
				binary.BigEndian.PutUint64(out[len(c.cookie):], c.nonce)
				n := curveNonce("CurveZMQINITIATE", c.nonce)
				init = box.SealAfterPrecomputation(out, plain[1:], &n, &c.shared)
			}
			if cookieFlip != 0 {
				init[int(cookieFlip)%curveCookieSize] ^= cookieFlip
			}
			c.send("INITIATE", init)
			_, _, _ = c.recv()
		}
		cli.Close()
		checkHandshakeErr(t, <-done)
	})
}

// FuzzCurveReady: a real handshake with our client whose READY box holds any plaintext
// (metadata), sealed by a harness playing the server.
func FuzzCurveReady(f *testing.F) {
	f.Add(appendMetadata(nil, Router, nil))
	f.Add(appendMetadata(nil, Sub, nil))
	f.Add([]byte{11, 'S', 'o'})
	f.Add(appendProperty(nil, "Socket-Type", bytes.Repeat([]byte("R"), 300)))
	f.Fuzz(func(t *testing.T, md []byte) {
		srv, cli := net.Pipe()
		defer srv.Close()
		defer cli.Close()
		_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
		_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
		done := make(chan error, 1)
		go func() {
			fr := newFrameReader(cli, fuzzMaxMsg)
			defer fr.release()
			_, err := runHandshake(cli, fr, Dealer, nil, CurveClient(fuzzServerKeys.Public, fuzzClientKeys), &net.TCPAddr{})
			cli.Close()
			done <- err
		}()
		fakeServerReady(srv, md)
		srv.Close()
		checkHandshakeErr(t, <-done)
	})
}

func writeOK(w io.Writer, b []byte) bool {
	_, err := w.Write(b)
	return err == nil
}

// fakeServerReady plays CURVE's server side far enough to send READY with metadata md. It
// stops quietly at the first failure (the client closed).
func fakeServerReady(nc net.Conn, md []byte) {
	fr := newFrameReader(nc, -1)
	defer fr.release()
	// net.Pipe does not buffer: read the client's greeting before writing ours.
	var g [greetingSize]byte
	if fr.readFull(g[:]) != nil || !writeOK(nc, appendGreeting(nil, "CURVE", true)) {
		return
	}
	recv := func() []byte {
		m := AcquireMsg()
		defer m.Release()
		if _, err := fr.readMsg(m); err != nil {
			return nil
		}
		_, data, err := splitCommand(m.Frames[0])
		if err != nil {
			return nil
		}
		return append([]byte(nil), data...)
	}
	hello := recv()
	if len(hello) != curveHelloSize {
		return
	}
	var cTrans [32]byte
	copy(cTrans[:], hello[74:106])
	sTrans, sTransSec, _ := box.GenerateKey(rand.Reader)
	own := [32]byte(fuzzServerKeys.Secret)
	wplain := append(append([]byte(nil), sTrans[:]...), make([]byte, curveCookieSize)...)
	welcome := make([]byte, 16, curveWelcomeSize)
	n := longNonce("WELCOME-", welcome[:16])
	welcome = box.Seal(welcome, wplain, &n, &cTrans, &own)
	if _, err := nc.Write(appendCommand(nil, "WELCOME", welcome)); err != nil {
		return
	}
	if recv() == nil {
		return
	}
	var shared [32]byte
	box.Precompute(&shared, &cTrans, sTransSec)
	ready := binary.BigEndian.AppendUint64(nil, 1)
	n = curveNonce("CurveZMQREADY---", 1)
	ready = box.SealAfterPrecomputation(ready, md, &n, &shared)
	_, _ = nc.Write(appendCommand(nil, "READY", ready))
}

// FuzzCurveMessage: any bytes to the MESSAGE reader of an established connection (fixed key),
// whole and split in two: no panic, only protocol errors or EOF, same messages however split;
// and frames from the fuzzer encoded by our writer read back unchanged.
func FuzzCurveMessage(f *testing.F) {
	var key [32]byte
	key[0] = 9
	enc := func(frames ...[]byte) []byte {
		cc := newCurveCipher(&key, false, 2, 0)
		var q wqueue
		q.cz = cc
		q.writeFrames(nil, frames)
		q.writeCommand("PING", []byte{0, 1})
		var out []byte
		for _, c := range q.chunks {
			out = append(out, c...)
		}
		q.drop()
		return out
	}
	f.Add(enc([]byte("hello")))
	f.Add(enc([]byte("a"), nil, []byte("c")))
	f.Add(enc(bytes.Repeat([]byte("L"), 300)))
	f.Add(append(enc([]byte("x")), enc([]byte("replayed"))...))
	f.Add(appendCommand(nil, "MESSAGE", make([]byte, 30)))
	f.Add(frameBytes(0, []byte("\x07MESSAGE")))
	parse := func(t *testing.T, r io.Reader) ([]string, error) {
		fr := newFrameReader(r, fuzzMaxMsg)
		defer fr.release()
		fr.cz = newCurveCipher(&key, true, 1, 1)
		var out []string
		for {
			m := AcquireMsg()
			kind, err := fr.readMsg(m)
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
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := parse(t, bytes.NewReader(data))
		for _, i := range splitPoints(len(data)) {
			got, err := parse(t, &pieceReader{pieces: [][]byte{data[:i:i], data[i:]}})
			if len(got) != len(want) || (err == nil) != (wantErr == nil) {
				t.Fatalf("split at %d: %d messages (err %v), whole: %d (err %v)", i, len(got), err, len(want), wantErr)
			}
		}
		// Round trip: the input's halves as a two-frame message.
		if len(data) <= fuzzMaxMsg {
			h := len(data) / 2
			got, err := parse(t, bytes.NewReader(enc(data[:h], data[h:])))
			if err != io.EOF || len(got) != 2 || got[0] != string(rune('0'+kindData))+string(data[:h])+"\xff"+string(data[h:]) {
				t.Fatalf("round trip of %d bytes: %q, %v", len(data), got, err)
			}
		}
	})
}
