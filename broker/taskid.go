package broker

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"

	"github.com/zerotask/zerotask/internal/rawjson"
)

// Public task ids. A submitted task's id is "<epoch>-<seq>-<tag>": the broker run's epoch (8 hex
// digits), the task's sequence number, and a tag of 16 hex digits, the first 64 bits of the
// AES-128 encryption of the sequence number under a key drawn at random for the run. The id is a
// capability: whoever holds it may read, wait on or revoke the task (on a broker without
// authentication; with it, only the submitter or an admin), so the tag makes the id
// unguessable: the epoch (in broker.stats) and a sequence number give nothing without it. The
// task's name, "<epoch>-<seq>", tells tasks apart in the PUB state stream without letting a
// subscriber act on them.

// idTagLen is the length of an id's tag: 16 hex digits (64 bits).
const idTagLen = 16

// idKeys is the secret that tags the public ids of one broker run.
type idKeys struct {
	block   cipher.Block
	in, out [aes.BlockSize]byte // scratch: fields, so that passing them does not allocate
}

// newIDKeys draws the run's id key (crypto/rand.Read does not fail: it crashes the program
// when the system has no randomness to give).
func newIDKeys() *idKeys {
	var k [16]byte
	_, _ = rand.Read(k[:])
	b, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	return &idKeys{block: b}
}

// appendTag appends the tag of sequence number seq.
func (k *idKeys) appendTag(dst []byte, seq uint64) []byte {
	binary.BigEndian.PutUint64(k.in[:8], seq)
	k.block.Encrypt(k.out[:], k.in[:])
	return hex.AppendEncode(dst, k.out[:idTagLen/2])
}

// validTag reports whether tag is the tag of seq, in constant time.
func (k *idKeys) validTag(tag []byte, seq uint64) bool {
	if len(tag) != idTagLen {
		return false
	}
	var want [idTagLen]byte
	binary.BigEndian.PutUint64(k.in[:8], seq)
	k.block.Encrypt(k.out[:], k.in[:])
	hex.Encode(want[:], k.out[:idTagLen/2])
	return subtle.ConstantTimeCompare(want[:], tag) == 1
}

// taskName returns the name of the task of public id s: the id without its tag. An id that
// has no tag (a store id of another form) is its own name.
func taskName[S ~string | ~[]byte](s S) S {
	n := len(s) - idTagLen - 1
	if n <= 0 || s[n] != '-' {
		return s
	}
	for i := n + 1; i < len(s); i++ {
		if b := s[i]; (b < '0' || b > '9') && (b < 'a' || b > 'f') {
			return s
		}
	}
	return s[:n]
}

// TaskID returns the id of the task named name (its id without the tag, as the PUB state
// stream shows it), or ok false when the name is neither of this broker run nor of a task it
// took from the store. It is for the
// operator's tools that run in the broker's process (the dashboard), which see names in the
// state stream and act on ids; it is safe to call concurrently with the broker.
func (b *Broker) TaskID(name string) (id string, ok bool) {
	c := b.c
	if e := len(c.epoch); len(name) > e+1 && name[:e] == c.epoch && name[e] == '-' {
		if seq, ok := rawjson.ParseUint([]byte(name[e+1:])); ok {
			var in, out [aes.BlockSize]byte
			binary.BigEndian.PutUint64(in[:8], seq)
			c.ids.block.Encrypt(out[:], in[:]) // the block is safe for concurrent use; the scratch is not
			return name + "-" + hex.EncodeToString(out[:idTagLen/2]), true
		}
	}
	if c.dur == nil {
		return "", false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range c.dur.alias {
		if taskName(id) == name {
			return id, true
		}
	}
	return "", false
}
