package zmtp

import (
	"errors"
	"io"
)

// Decoder reads ZMTP 3.x data messages from a byte stream that follows the greeting and the
// handshake, through the same frame reader, limits and protocol checks that a connection uses.
// It is for tools, tests and fuzz targets that have bytes but no connection (fuzz/ feeds raw
// frames through it into the codec and the broker); sockets never need it.
//
// Command frames (PING, PONG, SUBSCRIBE, ...) are skipped: a socket handles them itself. A
// Decoder is not safe for concurrent use; Close returns its read buffer to the pool.
type Decoder struct {
	fr *frameReader
}

// NewDecoder returns a Decoder reading from r. maxMsgSize bounds every frame and message as
// Options.MaxMsgSize does (0 means DefaultMaxMsgSize, -1 unlimited): a header that announces
// more is a protocol error before anything is allocated for it.
func NewDecoder(r io.Reader, maxMsgSize int64) *Decoder {
	if maxMsgSize == 0 {
		maxMsgSize = DefaultMaxMsgSize
	}
	return &Decoder{fr: newFrameReader(r, maxMsgSize)}
}

// Next reads the next data message into m, which it resets first (m's frames are valid until
// its next reset or Release). It returns io.EOF when the stream ends at a message boundary,
// io.ErrUnexpectedEOF when it ends inside one, and an error wrapping ErrProtocol for a
// malformed frame (reserved flag bits, a command with MORE, a size past the limit); after an
// error the Decoder must not be used again, as a connection would be closed.
func (d *Decoder) Next(m *Msg) error {
	if d.fr == nil {
		return ErrClosed
	}
	for {
		m.reset()
		kind, err := d.fr.readMsg(m)
		if err != nil {
			if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			return err
		}
		if kind == kindData {
			return nil
		}
	}
}

// Close releases the Decoder's read buffer; Next then returns ErrClosed.
func (d *Decoder) Close() {
	if d.fr != nil {
		d.fr.release()
		d.fr = nil
	}
}
