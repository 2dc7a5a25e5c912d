package broker

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/zmtp"
)

// Roles. With Config.Authorize set, each connection that authenticated with a CURVE key gets
// the identity the hook gives that key, once, on its first message: the roles say what it may
// do (RoleNode: say hello as a node and run tasks; RoleClient: call and submit tasks; RoleAdmin:
// read, wait on and revoke anyone's tasks), the name appears in broker.nodes, in the records of
// the tasks it submits and in the logs. Config.AuthorizeUser does the same for connections
// that authenticated with a PLAIN username (plain.go). A NULL connection, or any connection
// while its hook is nil, may do everything: the handshake is then the only gate.

// Role is a set of rights of an authenticated peer.
type Role uint8

// The roles an Authorizer grants.
const (
	RoleClient Role = 1 << iota // call and submit tasks, and read, wait on and revoke its own
	RoleNode                    // say hello as a node, receive tasks and answer them
	RoleAdmin                   // read, wait on and revoke the tasks of any submitter
)

// Identity is who an authenticated key is: a name for logs and records, and its roles.
type Identity struct {
	Name  string
	Roles Role
}

// Authorizer returns the identity of a connection that authenticated with key; ok false (an
// unknown key) grants no role. It is called on the routing loop, once per connection: it must
// not block. It is the hook to replace the built-in key lists of `zerotask broker`.
type Authorizer func(key zmtp.CurveKey) (id Identity, ok bool)

// KeyRoles returns the Authorizer of the built-in key lists: the keys of clients get
// RoleClient, those of nodes RoleNode, those of admins RoleAdmin and RoleClient (a key in
// several lists gets all their roles), named by the first list that names them.
func KeyRoles(clients, nodes, admins map[zmtp.CurveKey]string) Authorizer {
	m := make(map[zmtp.CurveKey]Identity, len(clients)+len(nodes)+len(admins))
	add := func(keys map[zmtp.CurveKey]string, r Role) {
		for k, name := range keys {
			id := m[k]
			if id.Name == "" {
				id.Name = name
			}
			id.Roles |= r
			m[k] = id
		}
	}
	add(admins, RoleAdmin|RoleClient)
	add(clients, RoleClient)
	add(nodes, RoleNode)
	return func(k zmtp.CurveKey) (Identity, bool) {
		id, ok := m[k]
		if ok && id.Name == "" {
			id.Name = k.String()
		}
		return id, ok
	}
}

// allRoles is what an unauthenticated connection may do.
const allRoles = RoleClient | RoleNode | RoleAdmin

// identify sets p's identity from the CURVE key or the PLAIN username of its first message m.
func (c *core) identify(p *peer, m *zmtp.Msg) {
	k, ok := m.CurveKey()
	if !ok {
		if user, ok := m.PlainUser(); ok {
			c.identifyUser(p, user)
		}
		return
	}
	p.keyed, p.key = true, k
	if c.cfg.Authorize == nil {
		p.user = k.String()
		return
	}
	id, known := c.cfg.Authorize(k)
	p.deny = allRoles
	if known {
		p.deny &^= id.Roles
	}
	p.user = id.Name
	if p.user == "" {
		p.user = k.String()
	}
	if len(p.user) > MaxUserName {
		p.user = p.user[:MaxUserName] // so that a durable task keeps its whole submitter's name
	}
}

// identifyUser sets p's identity from the PLAIN username it authenticated with.
func (c *core) identifyUser(p *peer, user string) {
	p.keyed, p.user = true, user
	if c.cfg.AuthorizeUser != nil {
		id, known := c.cfg.AuthorizeUser(user)
		p.deny = allRoles
		if known {
			p.deny &^= id.Roles
			if id.Name != "" {
				p.user = id.Name
			}
		}
	}
	if len(p.user) > MaxUserName {
		p.user = p.user[:MaxUserName]
	}
}

// MaxUserName bounds the bytes of an authenticated name: an Authorizer's longer name is cut.
const MaxUserName = 1024

// may reports whether p holds a role of r; if not, it answers the request with e, counts and logs
// the refusal.
func (c *core) may(p *peer, r Role, tg target, id []byte, e *codec.Error) bool {
	if p.deny&r != r {
		return true
	}
	c.cnt.forbidden++
	c.log.Warn("broker: request refused: the key lacks the role", "user", p.user, "key", p.key.String(), "peer", hex.EncodeToString(p.ident), "reason", e.Message)
	c.fail(tg, id, e)
	return false
}

// Tasks belong to their submitter: a submitted task records the authenticated name of the
// connection that submitted it, and only a connection with that name or with RoleAdmin may read,
// wait on or revoke it; to others it is UNKNOWN, as a task that never was. Idempotency keys are
// scoped to the submitter and the method.

// ownerOf returns the authenticated name of the submitter of task t in slot, or "".
func (c *core) ownerOf(slot uint32, t *task) string {
	if t.flags&fOpts == 0 {
		return ""
	}
	return c.opts[slot].owner
}

// mayRead reports whether p may see the task of public id raw: its own, any task for a
// connection with RoleAdmin, and any task that has no authenticated submitter.
func (c *core) mayRead(p *peer, raw []byte) bool {
	if p.deny&RoleAdmin == 0 {
		return true
	}
	seq, ok := c.parsePublicID(raw)
	if !ok {
		return true // unknown anyway
	}
	owner := ""
	if slot, live := c.subm[seq]; live {
		owner = c.ownerOf(slot, c.tasks.at(slot))
	} else if f := c.flowOf(seq); f != nil {
		owner = f.owner
	} else if rec, ok := c.store.get(seq); ok {
		owner = rec.owner
	}
	return owner == "" || owner == p.user
}

// scopeKey returns the idempotency key of a submit by user for method: distinct users and
// methods never share one.
func scopeKey(user, method string, key []byte) []byte {
	b := make([]byte, 0, len(user)+len(method)+len(key)+2)
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, method...)
	b = append(b, 0)
	return append(b, key...)
}

// ErrUnprotected is New's refusal to bind a non-loopback address without authentication
// (protected mode, see Config.Insecure).
var ErrUnprotected = errors.New("broker: refusing to bind a non-loopback address without authentication")

// protected enforces protected mode: without a Security mechanism, only addresses that this
// machine alone can reach, unless Insecure.
func (cfg *Config) protected() error {
	if cfg.Security != nil || cfg.Insecure {
		return nil
	}
	for _, ep := range []string{cfg.Listen, cfg.Pub} {
		if ep != "" && ep != PubDisabled && !LocalEndpoint(ep) {
			return fmt.Errorf("%w: %s: anyone who reaches it can submit tasks or act as a node; "+
				"set Config.Security (CURVE with the keys allowed), bind a loopback address, or set Config.Insecure to accept the risk", ErrUnprotected, ep)
		}
	}
	return nil
}

// LocalEndpoint reports whether ep can only be reached from this machine: a tcp endpoint on a
// loopback address (or localhost), or ipc.
func LocalEndpoint(ep string) bool {
	if strings.HasPrefix(ep, "ipc://") {
		return true
	}
	hostport, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
