package zmtp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// CurveKey is a CURVE (Curve25519) public or secret key: 32 bytes, written as 40 Z85
// characters in text, as libzmq's zmq_curve_keypair and czmq certificates write them.
type CurveKey [32]byte

// CurveKeyPair is a long-term CURVE key pair.
type CurveKeyPair struct {
	Public CurveKey
	Secret CurveKey
}

// ErrCurveKey reports a CURVE key that cannot be parsed or a key file that holds none.
var ErrCurveKey = errors.New("zmtp: bad CURVE key")

// NewCurveKeyPair generates a key pair from crypto/rand.
func NewCurveKeyPair() (CurveKeyPair, error) {
	var kp CurveKeyPair
	if _, err := io.ReadFull(rand.Reader, kp.Secret[:]); err != nil {
		return kp, fmt.Errorf("zmtp: CURVE key generation: %w", err)
	}
	return CurveKeyPairFromSecret(kp.Secret)
}

// CurveKeyPairFromSecret returns the key pair of a secret key (the public key is derived).
func CurveKeyPairFromSecret(secret CurveKey) (CurveKeyPair, error) {
	pub, err := curve25519.X25519(secret[:], curve25519.Basepoint)
	if err != nil {
		return CurveKeyPair{}, fmt.Errorf("%w: %w", ErrCurveKey, err)
	}
	kp := CurveKeyPair{Secret: secret}
	copy(kp.Public[:], pub)
	return kp, nil
}

// String returns the key in Z85 (40 characters).
func (k CurveKey) String() string { return string(z85Encode(nil, k[:])) }

// IsZero reports whether the key is all zeros (unset).
func (k CurveKey) IsZero() bool { return k == CurveKey{} }

// equal compares two keys in constant time.
func (k *CurveKey) equal(b []byte) bool { return subtle.ConstantTimeCompare(k[:], b) == 1 }

// ParseCurveKey parses a key written in Z85 (40 characters) or hex (64 characters).
func ParseCurveKey(s string) (CurveKey, error) {
	var k CurveKey
	s = strings.TrimSpace(s)
	switch len(s) {
	case 40:
		if _, err := z85Decode(k[:0], []byte(s)); err != nil {
			return k, fmt.Errorf("%w: %w", ErrCurveKey, err)
		}
		return k, nil
	case 64:
		for i := range k {
			hi, ok1 := unhex(s[2*i])
			lo, ok2 := unhex(s[2*i+1])
			if !ok1 || !ok2 {
				return k, fmt.Errorf("%w: bad hex digit", ErrCurveKey)
			}
			k[i] = hi<<4 | lo
		}
		return k, nil
	}
	return k, fmt.Errorf("%w: %d characters, want 40 (Z85) or 64 (hex)", ErrCurveKey, len(s))
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// maxKeyFile bounds what a key file reader reads: key files are a few hundred bytes.
const maxKeyFile = 64 << 10

// keyFile is what a key file holds: a bare key on its first non-comment line, or a czmq
// certificate's public-key / secret-key.
type keyFile struct {
	bare           string
	public, secret string
}

// parseKeyFile reads a key file: a bare Z85 key on one line (# comments and blank lines
// allowed), or a czmq certificate (ZPL text with `public-key = "..."` and, for a secret
// certificate, `secret-key = "..."` under `curve`).
func parseKeyFile(b []byte) (keyFile, error) {
	var kf keyFile
	if len(b) > maxKeyFile {
		return kf, fmt.Errorf("%w: key file over %d bytes", ErrCurveKey, maxKeyFile)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	lines := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		lines++
		// Z85 has '=' among its characters: only a known property name makes a line a
		// certificate property.
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || (name != "public-key" && name != "secret-key") {
			if lines == 1 {
				kf.bare = line
			}
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		if name == "public-key" {
			kf.public = value
		} else {
			kf.secret = value
		}
	}
	if err := sc.Err(); err != nil {
		return kf, fmt.Errorf("%w: %w", ErrCurveKey, err)
	}
	if kf.public != "" || kf.secret != "" {
		kf.bare = "" // a certificate: its "metadata" / "curve" section lines are not keys
	}
	return kf, nil
}

// ParseCurvePublicFile parses the contents of a public key file: a bare key, or a czmq
// certificate (public or secret; its public-key is used).
func ParseCurvePublicFile(b []byte) (CurveKey, error) {
	kf, err := parseKeyFile(b)
	if err != nil {
		return CurveKey{}, err
	}
	switch {
	case kf.public != "":
		return ParseCurveKey(kf.public)
	case kf.bare != "":
		return ParseCurveKey(kf.bare)
	}
	return CurveKey{}, fmt.Errorf("%w: no public key in the file", ErrCurveKey)
}

// ParseCurveSecretFile parses the contents of a secret key file: a bare secret key, or a czmq
// secret certificate (whose public-key, when present, must match its secret-key).
func ParseCurveSecretFile(b []byte) (CurveKeyPair, error) {
	kf, err := parseKeyFile(b)
	if err != nil {
		return CurveKeyPair{}, err
	}
	s := kf.secret
	if s == "" {
		s = kf.bare
	}
	if s == "" {
		return CurveKeyPair{}, fmt.Errorf("%w: no secret key in the file", ErrCurveKey)
	}
	sk, err := ParseCurveKey(s)
	if err != nil {
		return CurveKeyPair{}, err
	}
	kp, err := CurveKeyPairFromSecret(sk)
	if err != nil {
		return kp, err
	}
	if kf.public != "" {
		pk, err := ParseCurveKey(kf.public)
		if err != nil {
			return CurveKeyPair{}, err
		}
		if pk != kp.Public {
			return CurveKeyPair{}, fmt.Errorf("%w: the certificate's public-key is not its secret-key's", ErrCurveKey)
		}
	}
	return kp, nil
}

// LoadCurvePublic reads a public key from a file (see ParseCurvePublicFile), or takes arg itself
// when it is a 40-character Z85 key rather than a path.
func LoadCurvePublic(arg string) (CurveKey, error) {
	if len(arg) == 40 {
		if k, err := ParseCurveKey(arg); err == nil {
			if _, statErr := os.Stat(arg); statErr != nil {
				return k, nil
			}
		}
	}
	return loadKeyFile(arg, maxKeyFile, ParseCurvePublicFile)
}

// LoadCurveSecret reads a secret key file (see ParseCurveSecretFile).
func LoadCurveSecret(path string) (CurveKeyPair, error) {
	return loadKeyFile(path, maxKeyFile, ParseCurveSecretFile)
}

// loadKeyFile reads the key file at path (at most limit bytes) and parses it; a parse error
// names the file.
func loadKeyFile[K any](path string, limit int64, parse func([]byte) (K, error)) (K, error) {
	var zero K
	b, err := readKeyFile(path, limit)
	if err != nil {
		return zero, err
	}
	k, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readKeyFile reads the file at path, up to one byte past limit (the parser refuses that).
func readKeyFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCurveKey, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCurveKey, path, err)
	}
	return b, nil
}

// WriteCurveKeyFiles writes a key pair as czmq certificates, as curve_keygen's users expect:
// base (public, mode 0644) and base+"_secret" (secret, mode 0600). Existing files are not
// overwritten.
func WriteCurveKeyFiles(base string, kp CurveKeyPair) error {
	pub := fmt.Sprintf("#   ZeroMQ CURVE Public Certificate\n#   Exchange securely, or use a secure mechanism to verify the contents\n#   of this file after exchange. Store public certificates in your home\n#   directory, in the .curve subdirectory.\n\nmetadata\ncurve\n    public-key = %q\n", kp.Public.String())
	sec := fmt.Sprintf("#   ZeroMQ CURVE **Secret** Certificate\n#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\nmetadata\ncurve\n    public-key = %q\n    secret-key = %q\n", kp.Public.String(), kp.Secret.String())
	if _, err := os.Lstat(base); err == nil {
		return fmt.Errorf("%s: %w", base, os.ErrExist)
	}
	if err := writeNew(base+"_secret", sec, 0o600); err != nil {
		return err
	}
	return writeNew(base, pub, 0o644)
}

func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// maxKeyList bounds an authorized-keys file.
const maxKeyList = 16 << 20

// ParseCurveKeyList parses a list of public keys: one key (Z85, or hex) per line, optionally
// followed by white space and a name; blank lines and lines starting with # are skipped. It
// returns each key's name (the key itself when the line names none). A key listed twice keeps
// its first name.
func ParseCurveKeyList(b []byte) (map[CurveKey]string, error) {
	if len(b) > maxKeyList {
		return nil, fmt.Errorf("%w: key list over %d bytes", ErrCurveKey, maxKeyList)
	}
	keys := make(map[CurveKey]string)
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		field, name, _ := strings.Cut(line, " ")
		if f2, n2, ok := strings.Cut(field, "\t"); ok {
			field, name = f2, n2+" "+name
		}
		k, err := ParseCurveKey(field)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		name = strings.TrimSpace(name)
		if name == "" {
			name = k.String()
		}
		if _, dup := keys[k]; !dup {
			keys[k] = name
		}
	}
	return keys, nil
}

// LoadCurveKeyList reads a key list file (see ParseCurveKeyList).
func LoadCurveKeyList(path string) (map[CurveKey]string, error) {
	return loadKeyFile(path, maxKeyList, ParseCurveKeyList)
}
