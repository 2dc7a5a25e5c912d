package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/zmtp"
)

// PLAIN on the command line: the broker's --plain-users file (read again on SIGHUP), the
// --plain-user of nodes and clients with their password from $ZEROTASK_PLAIN_PASSWORD or a
// file, and `zerotask passwd`, which hashes a password for the users file.

// plainSelfUser is the name under which the broker's own in-process peers (the node of
// `zerotask up`, the dashboard) connect with PLAIN, with a password drawn at start that never
// leaves the process: as the broker's own CURVE key, it may do everything.
const plainSelfUser = "zerotask-broker"

// plainRing is the users a PLAIN broker allows, replaced whole on SIGHUP.
type plainRing struct {
	path     string
	selfPass string
	log      *slog.Logger
	users    atomic.Pointer[broker.PlainUsers]
}

func newPlainRing(path string, log *slog.Logger) (*plainRing, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	r := &plainRing{path: path, selfPass: hex.EncodeToString(b[:]), log: log}
	return r, r.load()
}

func (r *plainRing) load() error {
	u, err := broker.LoadPlainUsers(r.path)
	if err != nil {
		return fmt.Errorf("--plain-users: %w", err)
	}
	if _, ok := u.Authorize(plainSelfUser); ok {
		return fmt.Errorf("--plain-users: the name %s is the broker's own", plainSelfUser)
	}
	r.users.Store(u)
	return nil
}

func (r *plainRing) verify(user, pass string, peer net.Addr) bool {
	if user == plainSelfUser {
		return subtle.ConstantTimeCompare([]byte(pass), []byte(r.selfPass)) == 1
	}
	if r.users.Load().Verify(user, pass, peer) {
		return true
	}
	r.log.Warn("PLAIN credentials refused", "user", user, "peer", peer)
	return false
}

func (r *plainRing) authorize(user string) (broker.Identity, bool) {
	if user == plainSelfUser {
		return broker.Identity{Name: "broker", Roles: broker.RoleClient | broker.RoleNode | broker.RoleAdmin}, true
	}
	return r.users.Load().Authorize(user)
}

// self returns the PLAIN client mechanism of the broker's own peers.
func (r *plainRing) self() zmtp.Mechanism { return zmtp.PlainClient(plainSelfUser, r.selfPass) }

// reload reads the users again (SIGHUP) and closes the connections of users whose entry
// changed or went; a file that fails to read keeps the previous users.
func (r *plainRing) reload(b *broker.Broker) {
	before := r.users.Load()
	if err := r.load(); err != nil {
		r.log.Error("SIGHUP: users not reloaded, the previous users stay in force", "err", err)
		return
	}
	after := r.users.Load()
	n := b.ClosePlainPeers(func(user string) bool { return user != plainSelfUser && before.Changed(after, user) })
	r.log.Info("SIGHUP: users reloaded", "users", after.Len(), "connections_closed", n)
}

// applyPlain sets cfg's PLAIN server from --plain-users, warning when an address is not
// loopback: PLAIN sends passwords in clear text.
func (f *brokerSecFlags) applyPlain(cfg *broker.Config, log *slog.Logger) error {
	if *f.secret != "" {
		return usagef("--plain-users and --curve-secret: a broker speaks one mechanism, choose one")
	}
	ring, err := newPlainRing(*f.plainUsers, log)
	if err != nil {
		return err
	}
	f.plain = ring
	cfg.Security = zmtp.PlainServer(ring.verify)
	cfg.AuthorizeUser = ring.authorize
	for _, ep := range []string{cfg.Listen, cfg.Pub} {
		if ep != "" && ep != broker.PubDisabled && !broker.LocalEndpoint(ep) {
			log.Warn("PLAIN on a non-loopback address: passwords and every message travel in clear text, readable by anyone on the path; use CURVE (--curve-secret) across machines", "endpoint", ep)
		}
	}
	log.Info("PLAIN enabled", "users", ring.users.Load().Len())
	return nil
}

// plainPassword returns the password of --plain-user: from --plain-password-file, else
// $ZEROTASK_PLAIN_PASSWORD.
func (f *peerSecFlags) plainPassword() (string, error) {
	if *f.plainPassFile != "" {
		b, err := os.ReadFile(*f.plainPassFile)
		if err != nil {
			return "", fmt.Errorf("--plain-password-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return os.Getenv("ZEROTASK_PLAIN_PASSWORD"), nil
}

func runPasswd(_ context.Context, io *stdio, args []string) error {
	fs := newFlagSet("passwd", "NAME ROLES", "Print a line of a --plain-users file: NAME, ROLES (comma-separated: client, node, admin)\n"+
		"and the argon2id hash of the password read from the first line of standard input.")
	if err := parse(fs, io, args, 2, 2); err != nil {
		return err
	}
	name, roles := fs.Arg(0), fs.Arg(1)
	if strings.ContainsAny(name, " \t") || name == "" || name[0] == '#' || name == plainSelfUser {
		return usagef("NAME %q: no white space, no leading #, not %s", name, plainSelfUser)
	}
	for _, r := range strings.Split(roles, ",") {
		if r != "client" && r != "node" && r != "admin" {
			return usagef("role %q: want client, node or admin (comma-separated)", r)
		}
	}
	pass, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && pass == "" {
		return fmt.Errorf("passwd: reading the password from standard input: %w", err)
	}
	pass = strings.TrimRight(pass, "\r\n")
	if pass == "" {
		return usagef("an empty password")
	}
	line := name + " " + roles + " " + broker.HashPassword(pass)
	if _, err := broker.ParsePlainUsers("NAME ROLES", bufio.NewReader(strings.NewReader(line))); err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintln(io.out, line)
	return nil
}

// clientOptions returns the client options of the flags: CURVE with --curve-server, PLAIN with
// --plain-user, none without either.
func (f *peerSecFlags) clientOptions() ([]client.Option, error) {
	if _, err := f.mechanism(); err != nil { // the flags' checks
		return nil, err
	}
	if *f.plainUser != "" {
		pass, err := f.plainPassword()
		if err != nil {
			return nil, err
		}
		return []client.Option{client.WithPlain(*f.plainUser, pass)}, nil
	}
	server, own, ok, err := f.keys()
	if !ok || err != nil {
		return nil, err
	}
	return []client.Option{client.WithCurve(server, own)}, nil
}

// set reports whether any security flag of a peer is given.
func (f *peerSecFlags) set() bool { return *f.server != "" || *f.plainUser != "" }

// args returns the flags that give a child process the same security (the password travels by
// the environment the child inherits, or its file).
func (f *peerSecFlags) args() []string {
	var a []string
	for _, kv := range [][2]string{{"curve-server", *f.server}, {"curve-secret", *f.secret}, {"plain-user", *f.plainUser}, {"plain-password-file", *f.plainPassFile}} {
		if kv[1] != "" {
			a = append(a, "--"+kv[0], kv[1])
		}
	}
	return a
}
