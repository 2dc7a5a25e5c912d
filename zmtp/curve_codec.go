package zmtp

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// The CURVE data path: every frame (and every command after the handshake: PING, PONG,
// SUBSCRIBE, CANCEL) travels as one MESSAGE,
//
//	"\x07MESSAGE", short nonce (8), Box[flags (1) + frame](precomputed key)
//
// with flags bit 0 MORE and bit 1 COMMAND, as libzmq encodes them. Like libzmq, we send each
// MESSAGE as a single ZMTP frame without flags (a multipart message is several MESSAGEs, the
// MORE bit inside the box), and read a MESSAGE from a data or a command frame alike. Frames are encrypted in
// place in the connection's pending-output chunks and decrypted in place in the received
// message's buffer: nothing is allocated per message.

// curveMsgOverhead is what MESSAGE adds to a frame body: name, nonce, tag, flags.
const curveMsgOverhead = 8 + 8 + boxTag + 1

// Flags inside a MESSAGE box.
const (
	curveFlagMore    = 0x01
	curveFlagCommand = 0x02
)

// curveCipher is one connection's CURVE state after the handshake. The send half (txNonce) is
// used under the connection's wmu, in the order messages enter the queue, so nonces go out
// increasing; the receive half (rxNonce) belongs to the reader goroutine.
type curveCipher struct {
	txKey   [32]byte // XSalsa20 subkeys of each direction's nonce prefix (boxSubKey)
	rxKey   [32]byte
	txNonce uint64 // next short nonce to send
	rxNonce uint64 // last short nonce received
}

func newCurveCipher(shared *[32]byte, server bool, txNext, rxLast uint64) *curveCipher {
	tx, rx := "CurveZMQMESSAGEC", "CurveZMQMESSAGES"
	if server {
		tx, rx = rx, tx
	}
	return &curveCipher{txKey: boxSubKey(shared, tx), rxKey: boxSubKey(shared, rx), txNonce: txNext, rxNonce: rxLast}
}

// writeFrames encodes the frames of pre then of frames as MESSAGE commands, MORE on every one
// but the last (wqueue.writeFrames for a CURVE connection).
func (cc *curveCipher) writeFrames(q *wqueue, pre, frames [][]byte) {
	for i := range len(pre) + len(frames) {
		f, fl := nthFrame(pre, frames, i, curveFlagMore)
		cc.writeFrame(q, fl, nil, f, nil)
	}
}

// writeCommand encodes a command (name-size, name, data) as a MESSAGE with the COMMAND flag.
// Commands after the handshake carry at most two data parts (PING: TTL and context).
func (cc *curveCipher) writeCommand(q *wqueue, name string, data [][]byte) {
	var h [1 + 255]byte
	h[0] = byte(len(name))
	var b, c []byte
	switch len(data) {
	case 0:
	case 1:
		b = data[0]
	case 2:
		b, c = data[0], data[1]
	default:
		panic("zmtp: CURVE command with more than two data parts")
	}
	cc.writeFrame(q, curveFlagCommand, h[:1+copy(h[1:], name)], b, c)
}

// writeFrame encodes one MESSAGE whose frame body is a, b then c.
func (cc *curveCipher) writeFrame(q *wqueue, flags byte, a, b, c []byte) {
	plain := 1 + len(a) + len(b) + len(c)
	body := curveMsgOverhead - 1 + plain
	total := frameHeaderSize(body) + body
	var buf []byte
	var scratch *[]byte
	if total <= wchunkSize {
		buf = q.reserve(total)
	} else {
		// Larger than a chunk: sealed in a pooled scratch buffer, then queued across chunks.
		scratch = scratchPool.Get().(*[]byte)
		if cap(*scratch) < total {
			*scratch = make([]byte, total)
		}
		buf = (*scratch)[:total]
	}
	p := appendFrameHeader(buf[:0], 0, body)
	p = append(p, "\x07MESSAGE"...)
	p = binary.BigEndian.AppendUint64(p, cc.txNonce)
	boxStart := len(p)
	if len(a) == 0 && len(c) == 0 {
		// A data frame: encrypted from the caller's frame straight into the queue.
		p = p[:boxStart+boxTag+plain]
		sealFrame(p[boxStart:], flags, b, &cc.txKey, cc.txNonce)
	} else {
		p = p[:boxStart+boxTag]
		p = append(p, flags)
		p = append(p, a...)
		p = append(p, b...)
		p = append(p, c...)
		sealShort(p[boxStart:], &cc.txKey, cc.txNonce)
	}
	cc.txNonce++
	if scratch != nil {
		q.write(p)
		if cap(*scratch) <= maxPooledBuf {
			scratchPool.Put(scratch)
		}
	}
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 2*wchunkSize); return &b }}

// reserve returns n (<= wchunkSize) contiguous bytes at the end of the queue, counted as
// queued. When the last chunk has less room than n, a new chunk starts and the last one stays
// short (the writer sends each chunk's length, so a short chunk in the middle is fine).
func (q *wqueue) reserve(n int) []byte {
	k := len(q.chunks) - 1
	if k < 0 || wchunkSize-len(q.chunks[k]) < n {
		q.chunks = append(q.chunks, q.newChunk())
		k++
	}
	c := q.chunks[k]
	q.chunks[k] = c[:len(c)+n]
	q.n += n
	return c[len(c) : len(c)+n]
}

// checkHead checks a MESSAGE's name and short nonce (it must be above the last one received)
// and returns the nonce.
func (cc *curveCipher) checkHead(body []byte) (uint64, error) {
	if string(body[:8]) != "\x07MESSAGE" {
		return 0, errCurveNotReady
	}
	short := binary.BigEndian.Uint64(body[8:16])
	if short <= cc.rxNonce {
		return 0, errCurveNonce
	}
	return short, nil
}

// readMsg reads one message (every frame a MESSAGE command) or one command into m, decrypting
// each frame in place (frameReader.readMsg for a CURVE connection).
func (cc *curveCipher) readMsg(fr *frameReader, m *Msg) (msgKind, error) {
	preset := len(m.offs)
	total := uint64(0)
	for first := true; ; first = false {
		flags, size, err := fr.header()
		if err != nil {
			return 0, eofMidMessage(err, first)
		}
		if flags&flagMore != 0 {
			return 0, errCurveNotReady // the MORE bit travels inside the box
		}
		if size < curveMsgOverhead {
			return 0, errCurveMalform
		}
		payload := size - curveMsgOverhead
		total += payload
		if fr.max >= 0 && (payload > uint64(fr.max) || total > uint64(fr.max)) {
			return 0, fmt.Errorf("%w: %w: %d bytes announced, limit %d", ErrProtocol, ErrMsgTooLarge, total, fr.max)
		}
		if size > uint64(maxInt) || total > uint64(maxInt) {
			return 0, fmt.Errorf("%w: %w: %d bytes announced", ErrProtocol, ErrMsgTooLarge, total)
		}
		start := len(m.buf)
		var fl byte
		if int(size) <= fr.w-fr.r {
			// The whole MESSAGE is in the read buffer (the common case): decrypt it from
			// there straight into the message.
			body := fr.buf[fr.r : fr.r+int(size)]
			short, err := cc.checkHead(body)
			if err != nil {
				return 0, err
			}
			m.buf = growLen(m.buf, int(payload))
			var ok bool
			if fl, ok = openFrame(m.buf[start:], body[16:], &cc.rxKey, short); !ok {
				return 0, errCurveBox
			}
			fr.r += int(size)
			cc.rxNonce = short
		} else {
			if err := fr.readBody(m, int(size)); err != nil {
				return 0, eofMidMessage(err, false)
			}
			body := m.buf[start:]
			short, err := cc.checkHead(body)
			if err != nil {
				return 0, err
			}
			if !openShort(body[16:], &cc.rxKey, short) {
				return 0, errCurveBox
			}
			cc.rxNonce = short
			fl = body[16+boxTag]
			n := copy(m.buf[start:], body[curveMsgOverhead:])
			m.buf = m.buf[:start+n]
		}
		if fl&^(curveFlagMore|curveFlagCommand) != 0 {
			return 0, errCurveMalform
		}
		m.endFrame()
		if fl&curveFlagCommand != 0 {
			if fl&curveFlagMore != 0 || len(m.offs) != preset+1 {
				return 0, fmt.Errorf("%w: command inside a multipart message", ErrProtocol)
			}
			m.setFrames()
			return kindCommand, nil
		}
		if fl&curveFlagMore == 0 {
			m.setFrames()
			return kindData, nil
		}
	}
}
