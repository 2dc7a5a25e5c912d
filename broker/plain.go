package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/zerotask/zerotask/zmtp"
)

// PLAIN with roles. A broker whose Security is zmtp.PlainServer gives each connection that
// authenticated with a username the identity Config.AuthorizeUser gives that name, as
// Config.Authorize does for CURVE keys. PlainUsers is the built-in one: a file of users, each
// with its roles and an argon2id hash of its password (never the password itself).

// UserAuthorizer returns the identity of a connection that authenticated with PLAIN as user;
// ok false grants no role. Called on the routing loop, once per connection: it must not block.
type UserAuthorizer func(user string) (id Identity, ok bool)

// ClosePlainPeers closes the ROUTER and PUB connections whose PLAIN username drop returns true
// (see zmtp.Socket.ClosePlainPeers), after the users allowed changed.
func (b *Broker) ClosePlainPeers(drop func(user string) bool) int {
	n := b.router.ClosePlainPeers(drop)
	if b.pub != nil {
		n += b.pub.ClosePlainPeers(drop)
	}
	return n
}

// The argon2id parameters of HashPassword (RFC 9106's second recommended option, with less
// memory: 19 MiB and 2 passes, about 30 ms on one core), and the bounds of those a users file
// may ask for (a hash that costs more is refused when the file is read: verifying it is work
// any unauthenticated peer can make the broker do).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16

	maxArgonTime    = 10
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonThreads = 16
	// MaxPlainUsers bounds the users of a PlainUsers file.
	MaxPlainUsers = 100_000
)

// HashPassword returns the argon2id hash of password in the PHC string form
// ($argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, unpadded base64), with a random salt.
func HashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read does not fail (it crashes the program instead)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// passwordHash is a parsed argon2id PHC string.
type passwordHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

func parseHash(s string) (passwordHash, error) {
	var h passwordHash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errors.New("not an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return h, fmt.Errorf("argon2 version %q, want v=%d", parts[2], argon2.Version)
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &threads); err != nil {
		return h, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	if h.time < 1 || h.time > maxArgonTime || h.memory < 8*threads || h.memory > maxArgonMemory || threads < 1 || threads > maxArgonThreads {
		return h, fmt.Errorf("argon2 parameters %q out of bounds (t 1-%d, m up to %d KiB, p 1-%d)", parts[3], maxArgonTime, maxArgonMemory, maxArgonThreads)
	}
	h.threads = uint8(threads)
	var err error
	b64 := base64.RawStdEncoding
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return h, errors.New("argon2 salt: unpadded base64 of at least 8 bytes")
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errors.New("argon2 hash: unpadded base64 of 16 to 64 bytes")
	}
	return h, nil
}

// plainUser is one entry of a users file.
type plainUser struct {
	id   Identity
	hash passwordHash
}

// PlainUsers is the built-in PLAIN authentication: users with their roles and password
// hashes, read from a file by LoadPlainUsers. Verify is the zmtp.PlainServer check and
// Authorize the broker's Config.AuthorizeUser. Safe for concurrent use.
//
// Verifying a hash costs about 30 ms of one core and 19 MiB (HashPassword's parameters), and
// any peer that reaches the port can ask for it: verifications run one at a time, and a
// password that verified once for a user is remembered (as its SHA-256, until the file is
// read again) so that a known peer's reconnections cost nothing.
type PlainUsers struct {
	users map[string]plainUser

	mu   sync.Mutex // one verification at a time; guards good
	good map[string][sha256.Size]byte
}

// LoadPlainUsers reads a users file: one user a line, "NAME ROLES HASH" separated by white
// space, ROLES a comma-separated list of client, node and admin (admin implies client), HASH
// an argon2id PHC string as HashPassword (or `zerotask passwd`) writes it; blank lines and
// lines starting with # are skipped.
func LoadPlainUsers(path string) (*PlainUsers, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParsePlainUsers(f.Name(), bufio.NewReader(f))
}

// ParsePlainUsers parses a users file's content read from r (name for errors).
func ParsePlainUsers(name string, r *bufio.Reader) (*PlainUsers, error) {
	u := &PlainUsers{users: map[string]plainUser{}, good: map[string][sha256.Size]byte{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), 64*1024)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		fields := strings.Fields(string(text))
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: want NAME ROLES HASH", name, line)
		}
		var id Identity
		id.Name = fields[0]
		if len(id.Name) > MaxUserName {
			return nil, fmt.Errorf("%s:%d: name over %d bytes", name, line, MaxUserName)
		}
		for _, r := range strings.Split(fields[1], ",") {
			switch r {
			case "client":
				id.Roles |= RoleClient
			case "node":
				id.Roles |= RoleNode
			case "admin":
				id.Roles |= RoleAdmin | RoleClient
			default:
				return nil, fmt.Errorf("%s:%d: role %q (want client, node or admin)", name, line, r)
			}
		}
		h, err := parseHash(fields[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if _, dup := u.users[id.Name]; dup {
			return nil, fmt.Errorf("%s:%d: user %q listed twice", name, line, id.Name)
		}
		if len(u.users) >= MaxPlainUsers {
			return nil, fmt.Errorf("%s:%d: more than %d users", name, line, MaxPlainUsers)
		}
		u.users[id.Name] = plainUser{id: id, hash: h}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return u, nil
}

// Len returns the number of users.
func (u *PlainUsers) Len() int { return len(u.users) }

// Verify reports whether password is user's (the check of zmtp.PlainServer).
func (u *PlainUsers) Verify(user, password string, _ net.Addr) bool {
	e, ok := u.users[user]
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(password))
	u.mu.Lock()
	defer u.mu.Unlock()
	if good, ok := u.good[user]; ok && subtle.ConstantTimeCompare(good[:], sum[:]) == 1 {
		return true
	}
	h := e.hash
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	if subtle.ConstantTimeCompare(key, h.key) != 1 {
		return false
	}
	u.good[user] = sum
	return true
}

// Authorize returns user's identity (the broker's Config.AuthorizeUser).
func (u *PlainUsers) Authorize(user string) (Identity, bool) {
	e, ok := u.users[user]
	return e.id, ok
}

// Changed reports whether user's entry differs between u and next (roles, name or password
// hash), or is gone from next: the connections of such a user take their new rights by
// reconnecting (see Broker.ClosePlainPeers).
func (u *PlainUsers) Changed(next *PlainUsers, user string) bool {
	a, okA := u.users[user]
	b, okB := next.users[user]
	return okA != okB || a.id != b.id || !bytes.Equal(a.hash.key, b.hash.key) || !bytes.Equal(a.hash.salt, b.hash.salt)
}

// Server returns the PLAIN server mechanism that checks passwords against u.
func (u *PlainUsers) Server() zmtp.Mechanism { return zmtp.PlainServer(u.Verify) }
