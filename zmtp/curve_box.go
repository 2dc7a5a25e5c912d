package zmtp

import (
	"crypto/subtle"
	"encoding/binary"

	//lint:ignore SA1019 the one-time authenticator of NaCl's secretbox, used as secretbox uses it: nacl/secretbox refuses overlapping buffers and CURVE messages are sealed and opened in place
	"golang.org/x/crypto/poly1305"
	//lint:ignore SA1019 XSalsa20's HSalsa20 and keystream with an explicit counter, as nacl/secretbox uses them (the high-level salsa20 package has no in-place counter form)
	"golang.org/x/crypto/salsa20/salsa"
)

// In-place NaCl secretbox (XSalsa20-Poly1305), the crypto_box_afternm of CurveZMQ once the
// shared key is precomputed. golang.org/x/crypto/nacl/secretbox computes exactly this but its
// Seal and Open refuse an output that overlaps the input; CURVE messages are encrypted where
// they are written (the connection's pending-output chunks) and decrypted where they were read
// (the received message's buffer), so the construction is spelled out here over the same
// primitives. Box layout, as NaCl's: a 16-byte Poly1305 tag, then the ciphertext.

const boxTag = poly1305.TagSize // 16

// boxSetup derives the per-message XSalsa20 subkey and counter from the 24-byte nonce, and the
// first keystream block (its first 32 bytes are the Poly1305 key; the next 32 encrypt the
// first 32 message bytes).
func boxSetup(nonce *[24]byte, key *[32]byte, subKey *[32]byte, counter *[16]byte, block0 *[64]byte) {
	var hNonce [16]byte
	copy(hNonce[:], nonce[:16])
	salsa.HSalsa20(subKey, &hNonce, key, &salsa.Sigma)
	copy(counter[:], nonce[16:])
	*block0 = [64]byte{}
	salsa.XORKeyStream(block0[:], block0[:], counter, subKey)
}

// boxXOR encrypts or decrypts msg in place.
func boxXOR(msg []byte, subKey *[32]byte, counter *[16]byte, block0 *[64]byte) {
	n := min(len(msg), 32)
	for i := range n {
		msg[i] ^= block0[32+i]
	}
	if len(msg) > 32 {
		counter[8] = 1
		salsa.XORKeyStream(msg[32:], msg[32:], counter, subKey)
	}
}

// sealInPlace encrypts box[boxTag:] in place and writes the tag into box[:boxTag].
func sealInPlace(box []byte, nonce *[24]byte, key *[32]byte) {
	var subKey [32]byte
	var counter [16]byte
	var block0 [64]byte
	boxSetup(nonce, key, &subKey, &counter, &block0)
	sealWith(box, &subKey, &counter, &block0)
	clear(subKey[:])
}

// boxSubKey is the XSalsa20 subkey of a nonce prefix: HSalsa20 of the key and the nonce's
// first 16 bytes. CurveZMQ's MESSAGE nonces are a fixed 16-byte prefix per direction and an
// 8-byte counter, so a connection computes each direction's subkey once (sealShort,
// openShort) instead of once per message.
func boxSubKey(key *[32]byte, prefix string) [32]byte {
	var sub [32]byte
	var hNonce [16]byte
	copy(hNonce[:], prefix)
	salsa.HSalsa20(&sub, &hNonce, key, &salsa.Sigma)
	return sub
}

// headStream is how many message bytes the first keystream call covers: the first two Salsa20
// blocks hold the 32-byte Poly1305 key and then 96 message bytes, so a message that small (a
// 64-byte frame and its flags) takes one keystream call, not two.
const headStream = 2*64 - 32

// shortStream fills ks with the keystream of blocks 0 and 1 (as far as msgLen needs) for a
// nonce whose subkey is known, and returns the counter set for the stream's block 2.
func shortStream(ks *[128]byte, subKey *[32]byte, short uint64, msgLen int) [16]byte {
	var counter [16]byte
	binary.BigEndian.PutUint64(counter[:8], short)
	n := 32 + min(msgLen, headStream)
	salsa.XORKeyStream(ks[:n], ks[:n], &counter, subKey)
	counter[8] = 2
	return counter
}

// shortXOR encrypts or decrypts msg in place with the head keystream ks and, past it, the
// stream from block 2 on.
func shortXOR(msg []byte, ks *[128]byte, counter *[16]byte, subKey *[32]byte) {
	n := min(len(msg), headStream)
	for i := range n {
		msg[i] ^= ks[32+i]
	}
	if len(msg) > headStream {
		salsa.XORKeyStream(msg[headStream:], msg[headStream:], counter, subKey)
	}
}

// sealShort is sealInPlace with a precomputed subkey and a short nonce.
func sealShort(box []byte, subKey *[32]byte, short uint64) {
	var ks [128]byte
	msg := box[boxTag:]
	counter := shortStream(&ks, subKey, short, len(msg))
	shortXOR(msg, &ks, &counter, subKey)
	var tag [boxTag]byte
	poly1305.Sum(&tag, msg, (*[32]byte)(ks[:32]))
	copy(box[:boxTag], tag[:])
	clear(ks[:])
}

// sealFrame seals a MESSAGE plaintext (flags, then frame) into box, which has room for the tag
// and 1+len(frame) bytes: the frame is encrypted straight from the caller's memory into the
// box (the connection's pending-output chunk), without first being copied there.
func sealFrame(box []byte, flags byte, frame []byte, subKey *[32]byte, short uint64) {
	var ks [128]byte
	msg := box[boxTag : boxTag+1+len(frame)]
	counter := shortStream(&ks, subKey, short, len(msg))
	msg[0] = flags ^ ks[32]
	n := min(len(frame), headStream-1)
	for i := range n {
		msg[1+i] = frame[i] ^ ks[33+i]
	}
	if len(frame) > headStream-1 {
		salsa.XORKeyStream(msg[headStream:], frame[headStream-1:], &counter, subKey)
	}
	var tag [boxTag]byte
	poly1305.Sum(&tag, msg, (*[32]byte)(ks[:32]))
	copy(box[:boxTag], tag[:])
	clear(ks[:])
}

// openHead fills ks with the head keystream of the box's message and checks the box's tag
// against it, in constant time. It returns the counter for the stream past the head; on a bad
// tag it clears ks and reports false.
func openHead(ks *[128]byte, box []byte, subKey *[32]byte, short uint64) (counter [16]byte, ok bool) {
	msg := box[boxTag:]
	counter = shortStream(ks, subKey, short, len(msg))
	var want [boxTag]byte
	poly1305.Sum(&want, msg, (*[32]byte)(ks[:32]))
	if subtle.ConstantTimeCompare(box[:boxTag], want[:]) != 1 {
		clear(ks[:])
		return counter, false
	}
	return counter, true
}

// openFrame authenticates a MESSAGE box (tag, then flags and frame) where it was read and
// decrypts the frame straight into dst (len(box)-boxTag-1 bytes): one pass from the read
// buffer to the message, no copy first and no move after. On failure dst is untouched.
func openFrame(dst, box []byte, subKey *[32]byte, short uint64) (flags byte, ok bool) {
	var ks [128]byte
	counter, ok := openHead(&ks, box, subKey, short)
	if !ok {
		return 0, false
	}
	msg := box[boxTag:]
	flags = msg[0] ^ ks[32]
	frame := msg[1:]
	n := min(len(frame), headStream-1)
	for i := range n {
		dst[i] = frame[i] ^ ks[33+i]
	}
	if len(frame) > headStream-1 {
		salsa.XORKeyStream(dst[headStream-1:len(frame)], frame[headStream-1:], &counter, subKey)
	}
	clear(ks[:])
	return flags, true
}

// openShort is openInPlace with a precomputed subkey and a short nonce.
func openShort(box []byte, subKey *[32]byte, short uint64) bool {
	if len(box) < boxTag {
		return false
	}
	var ks [128]byte
	counter, ok := openHead(&ks, box, subKey, short)
	if !ok {
		return false
	}
	shortXOR(box[boxTag:], &ks, &counter, subKey)
	clear(ks[:])
	return true
}

func sealWith(box []byte, subKey *[32]byte, counter *[16]byte, block0 *[64]byte) {
	msg := box[boxTag:]
	boxXOR(msg, subKey, counter, block0)
	var polyKey [32]byte
	copy(polyKey[:], block0[:32])
	var tag [boxTag]byte
	poly1305.Sum(&tag, msg, &polyKey)
	copy(box[:boxTag], tag[:])
	clear(block0[:])
}

// openInPlace authenticates box and decrypts box[boxTag:] in place. On failure box is left
// untouched and false is returned.
func openInPlace(box []byte, nonce *[24]byte, key *[32]byte) bool {
	if len(box) < boxTag {
		return false
	}
	var subKey [32]byte
	var counter [16]byte
	var block0 [64]byte
	boxSetup(nonce, key, &subKey, &counter, &block0)
	ok := openWith(box, &subKey, &counter, &block0)
	clear(subKey[:])
	return ok
}

func openWith(box []byte, subKey *[32]byte, counter *[16]byte, block0 *[64]byte) bool {
	if len(box) < boxTag {
		return false
	}
	var polyKey [32]byte
	copy(polyKey[:], block0[:32])
	var tag, want [boxTag]byte
	copy(tag[:], box)
	msg := box[boxTag:]
	poly1305.Sum(&want, msg, &polyKey)
	if subtle.ConstantTimeCompare(tag[:], want[:]) != 1 {
		return false
	}
	boxXOR(msg, subKey, counter, block0)
	clear(block0[:])
	return true
}
