package zmtp

import (
	"bytes"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
)

func TestBoxInPlaceMatchesSecretbox(t *testing.T) {
	// sealInPlace and openInPlace are nacl/secretbox's Seal and Open, done in place.
	var key [32]byte
	var nonce [24]byte
	_, _ = rand.Read(key[:])
	_, _ = rand.Read(nonce[:])
	for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 1000, 70000} {
		msg := make([]byte, n)
		_, _ = rand.Read(msg)
		want := secretbox.Seal(nil, msg, &nonce, &key)
		box := make([]byte, boxTag+n)
		copy(box[boxTag:], msg)
		sealInPlace(box, &nonce, &key)
		if !bytes.Equal(box, want) {
			t.Fatalf("size %d: sealInPlace differs from secretbox.Seal", n)
		}
		if !openInPlace(box, &nonce, &key) || !bytes.Equal(box[boxTag:], msg) {
			t.Fatalf("size %d: openInPlace failed", n)
		}
		copy(box, want)
		box[len(box)-1] ^= 1
		if openInPlace(box, &nonce, &key) {
			t.Fatalf("size %d: a flipped bit authenticated", n)
		}
	}
}

func TestBoxShortNonceMatchesSecretbox(t *testing.T) {
	// sealShort/openShort (subkey computed once per prefix) are secretbox with the full nonce.
	var key [32]byte
	_, _ = rand.Read(key[:])
	sub := boxSubKey(&key, "CurveZMQMESSAGEC")
	for _, short := range []uint64{1, 2, 1 << 40} {
		for _, n := range []int{0, 1, 31, 32, 33, 65, 95, 96, 97, 127, 128, 129, 1025, 70000} {
			msg := make([]byte, n)
			_, _ = rand.Read(msg)
			nonce := curveNonce("CurveZMQMESSAGEC", short)
			want := secretbox.Seal(nil, msg, &nonce, &key)
			box := make([]byte, boxTag+n)
			copy(box[boxTag:], msg)
			sealShort(box, &sub, short)
			if !bytes.Equal(box, want) {
				t.Fatalf("nonce %d size %d: sealShort differs from secretbox.Seal", short, n)
			}
			if !openShort(box, &sub, short) || !bytes.Equal(box[boxTag:], msg) {
				t.Fatalf("nonce %d size %d: openShort failed", short, n)
			}
			if n > 0 {
				dst := make([]byte, n-1)
				if fl, ok := openFrame(dst, want, &sub, short); !ok || fl != msg[0] || !bytes.Equal(dst, msg[1:]) {
					t.Fatalf("nonce %d size %d: openFrame failed", short, n)
				}
				framed := make([]byte, boxTag+n)
				sealFrame(framed, msg[0], msg[1:], &sub, short)
				if !bytes.Equal(framed, want) {
					t.Fatalf("nonce %d size %d: sealFrame differs from secretbox.Seal", short, n)
				}
			}
			copy(box, want)
			box[n%len(box)] ^= 0x10
			if openShort(box, &sub, short) {
				t.Fatalf("nonce %d size %d: a flipped bit authenticated", short, n)
			}
			if openShort(want, &sub, short+1) {
				t.Fatalf("nonce %d size %d: opened under the next nonce", short, n)
			}
		}
	}
}
