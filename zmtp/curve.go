package zmtp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// CURVE (CurveZMQ, rfc.zeromq.org/spec/26, as ZMTP 3.x's CURVE mechanism). The client knows
// the server's long-term public key S; both sides make a transient key pair per connection
// (C', S') so that a stolen long-term key does not reveal past traffic. The handshake:
//
//	client                                         server
//	HELLO    C', Box[64 zeros](C'->S)            ->
//	                                             <-  WELCOME  Box[S', cookie](S->C')
//	INITIATE cookie, Box[C, vouch, metadata](C'->S') ->        vouch = Box[C', S](C->S')
//	                                             <-  READY    Box[metadata](S'->C')
//	MESSAGE  Box[flags, frame](C'->S')           <-> MESSAGE  Box[flags, frame](S'->C')
//
// Every box after HELLO's carries an 8-byte short nonce that strictly increases per direction
// (HELLO, INITIATE, then MESSAGEs from the client; READY then MESSAGEs from the server): a
// replayed, reordered or decreasing nonce closes the connection. The cookie, sealed with a
// server key that rotates every CurveCookieRotation, ties INITIATE to the WELCOME this server
// sent on this connection.

// Sizes of CURVE commands (bodies after the command name) and their parts.
const (
	curveHelloSize   = 2 + 72 + 32 + 8 + 80 // version, padding, C', short nonce, box
	curveWelcomeSize = 16 + 144             // long nonce, Box[S' + cookie]
	curveCookieSize  = 16 + 80              // long nonce, SecretBox[C' + s']
	curveVouchSize   = 80                   // Box[C' + S]
	// INITIATE: cookie, short nonce, Box[C + vouch nonce + vouch + metadata].
	curveInitiateMin = curveCookieSize + 8 + boxTag + 32 + 16 + curveVouchSize
	curveReadyMin    = 8 + boxTag // short nonce, Box[metadata]
	// maxCurveMetadata bounds the metadata in INITIATE and READY (Socket-Type and a routing
	// identity of at most 255 bytes fit many times over).
	maxCurveMetadata = 4096
)

// CurveCookieRotation is how often a CURVE server replaces the key that seals its WELCOME
// cookies; the key before is still accepted for one more period, so a handshake that spans a
// rotation completes. The spec asks for about a minute.
const CurveCookieRotation = 60 * time.Second

var (
	errCurveBox      = fmt.Errorf("%w: CURVE box does not authenticate", ErrProtocol)
	errCurveNonce    = fmt.Errorf("%w: CURVE nonce not above the last one", ErrProtocol)
	errCurveMalform  = fmt.Errorf("%w: malformed CURVE command", ErrProtocol)
	errCurveCookie   = fmt.Errorf("%w: CURVE cookie not from this server or connection", ErrProtocol)
	errCurveVouch    = fmt.Errorf("%w: CURVE vouch does not name this connection's keys", ErrProtocol)
	errCurveVersion  = fmt.Errorf("%w: CURVE HELLO version is not 1.0", ErrProtocol)
	errCurvePadding  = fmt.Errorf("%w: CURVE HELLO padding is not zero", ErrProtocol)
	errCurveRefused  = errors.New("zmtp: CURVE client key refused")
	errCurveNotReady = fmt.Errorf("%w: not a CURVE MESSAGE after the handshake", ErrProtocol)
)

// CurveClient returns the client side of CURVE: server is the server's long-term public key,
// own this client's long-term key pair (the server authenticates its public key).
func CurveClient(server CurveKey, own CurveKeyPair) Mechanism {
	return &curveClient{server: server, own: own}
}

// CurveAuth decides whether a client's long-term public key may connect; peer is its address.
type CurveAuth func(client CurveKey, peer net.Addr) bool

// CurveServer returns the server side of CURVE with the server's long-term key pair. auth
// decides each client's public key; a refused client gets an ERROR command (status "400", as
// libzmq's ZAP refusal) and is disconnected. A nil auth accepts every client key: encryption
// without client authentication, as libzmq without a ZAP handler.
//
// The returned mechanism holds the cookie keys (see CurveCookieRotation) and is meant to be
// shared by every socket of one server.
func CurveServer(own CurveKeyPair, auth CurveAuth) Mechanism {
	return &curveServer{own: own, auth: auth, cookies: cookieKeys{every: CurveCookieRotation, now: time.Now}}
}

// CurveAllow returns a CurveAuth accepting exactly the given client keys.
func CurveAllow(keys ...CurveKey) CurveAuth {
	m := make(map[CurveKey]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return func(k CurveKey, _ net.Addr) bool {
		_, ok := m[k]
		return ok
	}
}

// curveNonce builds a 24-byte nonce from a 16-byte prefix and a short nonce.
func curveNonce(prefix string, short uint64) [24]byte {
	var n [24]byte
	copy(n[:16], prefix)
	binary.BigEndian.PutUint64(n[16:], short)
	return n
}

// longNonce builds a 24-byte nonce from an 8-byte prefix and 16 bytes.
func longNonce(prefix string, b []byte) [24]byte {
	var n [24]byte
	copy(n[:8], prefix)
	copy(n[8:], b)
	return n
}

func randomBytes(b []byte) error {
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return fmt.Errorf("zmtp: CURVE randomness: %w", err)
	}
	return nil
}

type curveClient struct {
	server CurveKey
	own    CurveKeyPair
}

func (*curveClient) Name() string   { return "CURVE" }
func (*curveClient) isServer() bool { return false }

func (m *curveClient) run(h *handshake) error {
	cpub, csec, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("zmtp: CURVE key generation: %w", err)
	}
	server := [32]byte(m.server)
	nonce := uint64(1)

	// HELLO
	hello := make([]byte, curveHelloSize)
	hello[0], hello[1] = 1, 0
	copy(hello[74:106], cpub[:])
	binary.BigEndian.PutUint64(hello[106:114], nonce)
	n := curveNonce("CurveZMQHELLO---", nonce)
	box.Seal(hello[114:114], make([]byte, 64), &n, &server, csec)
	if err := h.send(appendCommand(h.out[:0], "HELLO", hello)); err != nil {
		return err
	}
	nonce++

	// WELCOME
	data, err := h.expect("WELCOME")
	if err != nil {
		return err
	}
	if len(data) != curveWelcomeSize {
		return errCurveMalform
	}
	n = longNonce("WELCOME-", data[:16])
	welcome, ok := box.Open(nil, data[16:], &n, &server, csec)
	if !ok {
		return errCurveBox
	}
	var sTrans, shared [32]byte
	copy(sTrans[:], welcome[:32])
	cookie := welcome[32:]
	box.Precompute(&shared, &sTrans, csec)

	// INITIATE
	vouchPlain := make([]byte, 64)
	copy(vouchPlain, cpub[:])
	copy(vouchPlain[32:], server[:])
	var vn [16]byte
	if err := randomBytes(vn[:]); err != nil {
		return err
	}
	n = longNonce("VOUCH---", vn[:])
	own := [32]byte(m.own.Secret)
	vouch := box.Seal(nil, vouchPlain, &n, &sTrans, &own)
	clear(own[:])
	plain := make([]byte, 0, 128+64+len(h.identity))
	plain = append(plain, m.own.Public[:]...)
	plain = append(plain, vn[:]...)
	plain = append(plain, vouch...)
	plain = append(plain, h.metadata()...)
	init := make([]byte, 0, curveCookieSize+8+boxTag+len(plain))
	init = append(init, cookie...)
	init = binary.BigEndian.AppendUint64(init, nonce)
	n = curveNonce("CurveZMQINITIATE", nonce)
	init = box.SealAfterPrecomputation(init, plain, &n, &shared)
	if err := h.send(appendCommand(h.out[:0], "INITIATE", init)); err != nil {
		return err
	}
	nonce++

	// READY
	data, err = h.expect("READY")
	if err != nil {
		return err
	}
	if len(data) < curveReadyMin || len(data) > curveReadyMin+maxCurveMetadata {
		return errCurveMalform
	}
	peerNonce := binary.BigEndian.Uint64(data)
	n = curveNonce("CurveZMQREADY---", peerNonce)
	md, ok := box.OpenAfterPrecomputation(nil, data[8:], &n, &shared)
	if !ok {
		return errCurveBox
	}
	if err := h.peerMetadata(md); err != nil {
		return err
	}
	h.cipher = newCurveCipher(&shared, false, nonce, peerNonce)
	return nil
}

type curveServer struct {
	own     CurveKeyPair
	auth    CurveAuth
	cookies cookieKeys
}

func (*curveServer) Name() string   { return "CURVE" }
func (*curveServer) isServer() bool { return true }

func (m *curveServer) run(h *handshake) error {
	own := [32]byte(m.own.Secret)
	defer clear(own[:])

	// HELLO
	data, err := h.expect("HELLO")
	if err != nil {
		return err
	}
	if len(data) != curveHelloSize {
		return errCurveMalform
	}
	if data[0] != 1 || data[1] != 0 {
		return errCurveVersion
	}
	for _, b := range data[2:74] {
		if b != 0 {
			return errCurvePadding
		}
	}
	var cTrans [32]byte
	copy(cTrans[:], data[74:106])
	peerNonce := binary.BigEndian.Uint64(data[106:114])
	n := curveNonce("CurveZMQHELLO---", peerNonce)
	sig, ok := box.Open(nil, data[114:], &n, &cTrans, &own)
	if !ok {
		return errCurveBox
	}
	for _, b := range sig {
		if b != 0 {
			return errCurveMalform
		}
	}

	// WELCOME: S' and a cookie (C' and s', sealed with the cookie key).
	sTrans, sTransSec, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("zmtp: CURVE key generation: %w", err)
	}
	cookie, err := m.cookies.seal(&cTrans, sTransSec)
	if err != nil {
		return err
	}
	wplain := make([]byte, 0, 32+curveCookieSize)
	wplain = append(wplain, sTrans[:]...)
	wplain = append(wplain, cookie...)
	welcome := make([]byte, 16, curveWelcomeSize)
	if err := randomBytes(welcome[:16]); err != nil {
		return err
	}
	n = longNonce("WELCOME-", welcome[:16])
	welcome = box.Seal(welcome, wplain, &n, &cTrans, &own)
	if err := h.send(appendCommand(h.out[:0], "WELCOME", welcome)); err != nil {
		return err
	}

	// INITIATE
	data, err = h.expect("INITIATE")
	if err != nil {
		return err
	}
	if len(data) < curveInitiateMin || len(data) > curveInitiateMin+maxCurveMetadata {
		return errCurveMalform
	}
	// The cookie must be one this server sealed for this connection's C' and S'.
	cplain, ok := m.cookies.open(data[:curveCookieSize])
	if !ok || !(*CurveKey)(&cTrans).equal(cplain[:32]) || !(*CurveKey)(sTransSec).equal(cplain[32:64]) {
		return errCurveCookie
	}
	initNonce := binary.BigEndian.Uint64(data[curveCookieSize:])
	if initNonce <= peerNonce {
		return errCurveNonce
	}
	var shared [32]byte
	box.Precompute(&shared, &cTrans, sTransSec)
	n = curveNonce("CurveZMQINITIATE", initNonce)
	plain, ok := box.OpenAfterPrecomputation(nil, data[curveCookieSize+8:], &n, &shared)
	if !ok {
		return errCurveBox
	}
	var client [32]byte
	copy(client[:], plain[:32])
	n = longNonce("VOUCH---", plain[32:48])
	vouch, ok := box.Open(nil, plain[48:128], &n, &client, sTransSec)
	if !ok {
		return errCurveVouch
	}
	if !(*CurveKey)(&cTrans).equal(vouch[:32]) || !m.own.Public.equal(vouch[32:64]) {
		return errCurveVouch
	}
	if m.auth != nil && !m.auth(CurveKey(client), h.remote) {
		_ = h.send(appendCommand(h.out[:0], "ERROR", errorReason("400")))
		return fmt.Errorf("%w: %s", errCurveRefused, CurveKey(client))
	}
	h.curveKey = CurveKey(client)
	if err := h.peerMetadata(plain[128:]); err != nil {
		return err
	}

	// READY
	nonce := uint64(1)
	ready := binary.BigEndian.AppendUint64(make([]byte, 0, 8+boxTag+64), nonce)
	n = curveNonce("CurveZMQREADY---", nonce)
	ready = box.SealAfterPrecomputation(ready, h.metadata(), &n, &shared)
	if err := h.send(appendCommand(h.out[:0], "READY", ready)); err != nil {
		return err
	}
	h.cipher = newCurveCipher(&shared, true, nonce+1, initNonce)
	clear(shared[:])
	clear(sTransSec[:])
	return nil
}

// cookieKeys are a CURVE server's cookie keys: the current one seals, the current and the one
// before it open. Rotation happens lazily, when a handshake finds the current key older than
// the period.
type cookieKeys struct {
	mu      sync.Mutex
	every   time.Duration
	now     func() time.Time
	cur     [32]byte
	prev    [32]byte
	hasPrev bool
	next    time.Time // when cur is replaced; zero: no key yet
}

// rotateLocked makes sure cur is no older than one period.
func (k *cookieKeys) rotateLocked() error {
	now := k.now()
	if !k.next.IsZero() && now.Before(k.next) {
		return nil
	}
	var fresh [32]byte
	if err := randomBytes(fresh[:]); err != nil {
		return err
	}
	// Only a key that was current during the last period stays valid.
	k.hasPrev = !k.next.IsZero() && now.Before(k.next.Add(k.every))
	k.prev, k.cur = k.cur, fresh
	k.next = now.Add(k.every)
	return nil
}

// seal returns a cookie: a 16-byte nonce and SecretBox[C' + s'](K).
func (k *cookieKeys) seal(cTrans, sTransSec *[32]byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.rotateLocked(); err != nil {
		return nil, err
	}
	out := make([]byte, 16, curveCookieSize)
	if err := randomBytes(out); err != nil {
		return nil, err
	}
	n := longNonce("COOKIE--", out)
	plain := make([]byte, 64)
	copy(plain, cTrans[:])
	copy(plain[32:], sTransSec[:])
	out = secretbox.Seal(out, plain, &n, &k.cur)
	clear(plain)
	return out, nil
}

// open returns a cookie's C' + s' if it was sealed with the current or the previous key.
func (k *cookieKeys) open(cookie []byte) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.rotateLocked(); err != nil {
		return nil, false
	}
	n := longNonce("COOKIE--", cookie[:16])
	if p, ok := secretbox.Open(nil, cookie[16:], &n, &k.cur); ok {
		return p, true
	}
	if k.hasPrev {
		return secretbox.Open(nil, cookie[16:], &n, &k.prev)
	}
	return nil, false
}

// CurveKey returns the long-term public key the sending peer authenticated with, for a message
// received on a CURVE server socket (ok false otherwise: NULL or PLAIN, our side the CURVE
// client, a message not received from a peer). A broker uses it to tell what a peer may do.
func (m *Msg) CurveKey() (key CurveKey, ok bool) {
	if m.from == nil || m.from.curveKey.IsZero() {
		return CurveKey{}, false
	}
	return m.from.curveKey, true
}

// errCurveRevoked ends the connections CloseCurvePeers drops.
var errCurveRevoked = errors.New("zmtp: CURVE key revoked")

// CloseCurvePeers closes the ready connections whose peer authenticated (on this CURVE server
// socket) with a key for which drop returns true, and returns how many it closed: after the
// list of allowed keys changes, the connections of a revoked key go too. Handshakes in
// progress are judged by the socket's CurveAuth when they reach INITIATE.
func (s *Socket) CloseCurvePeers(drop func(CurveKey) bool) int {
	n := 0
	for _, c := range *s.peers.Load() {
		if !c.curveKey.IsZero() && drop(c.curveKey) {
			c.shutdown(errCurveRevoked)
			n++
		}
	}
	return n
}
