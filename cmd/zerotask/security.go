package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/zmtp"
)

// CURVE on the command line: the broker's key pair and the public keys allowed to connect, the
// key pair and broker key of nodes and clients, `zerotask keygen`, and protected mode (a broker
// that would bind a non-loopback address without authentication refuses to start).

// brokerSecFlags are the broker's security flags.
type brokerSecFlags struct {
	secret, clients, nodes *string
	admins                 *string
	plainUsers             *string
	insecure               *bool
	ring                   *keyring   // the allowed keys, once apply has read them
	plain                  *plainRing // the PLAIN users, once apply has read them
}

// keyring is the set of keys a CURVE broker allows and their roles, replaced whole on SIGHUP.
type keyring struct {
	own                    zmtp.CurveKey
	clients, nodes, admins string
	keys                   atomic.Pointer[map[zmtp.CurveKey]string]
	roles                  atomic.Pointer[broker.Authorizer]
}

// load reads the lists; the keys in use change only when both read well.
func (r *keyring) load() error {
	allowed := map[zmtp.CurveKey]string{r.own: "broker"}
	lists := make([]map[zmtp.CurveKey]string, 3)
	for i, p := range []struct{ flag, path string }{{"authorized-clients", r.clients}, {"authorized-nodes", r.nodes}, {"authorized-admins", r.admins}} {
		if p.path == "" {
			continue
		}
		keys, err := zmtp.LoadCurveKeyList(p.path)
		if err != nil {
			return fmt.Errorf("--%s: %w", p.flag, err)
		}
		lists[i] = keys
		for k, name := range keys {
			if _, ok := allowed[k]; !ok {
				allowed[k] = name
			}
		}
	}
	// The broker's own key may do everything: only the holder of its secret can use it (the
	// in-process node of `zerotask up`).
	admins := map[zmtp.CurveKey]string{r.own: "broker"}
	for k, name := range lists[2] {
		if k != r.own {
			admins[k] = name
		}
	}
	auth := broker.KeyRoles(lists[0], lists[1], admins)
	own := auth
	auth = func(k zmtp.CurveKey) (broker.Identity, bool) {
		id, ok := own(k)
		if k == r.own {
			id.Roles |= broker.RoleNode
		}
		return id, ok
	}
	r.keys.Store(&allowed)
	r.roles.Store(&auth)
	return nil
}

func (r *keyring) allowed(k zmtp.CurveKey) bool {
	_, ok := (*r.keys.Load())[k]
	return ok
}

// authorize is the broker's Authorizer: the roles of the lists read last.
func (r *keyring) authorize(k zmtp.CurveKey) (broker.Identity, bool) {
	return (*r.roles.Load())(k)
}

// watchReload reads the key lists again on SIGHUP until ctx ends, and closes the connections
// of keys no longer listed. A list that fails to read keeps the previous keys (and is logged).
func (f *brokerSecFlags) watchReload(ctx context.Context, b *broker.Broker, log *slog.Logger) {
	if f.plain != nil {
		onSIGHUP(ctx, func() { f.plain.reload(b) })
		return
	}
	if f.ring == nil || (f.ring.clients == "" && f.ring.nodes == "" && f.ring.admins == "") {
		return
	}
	onSIGHUP(ctx, func() {
		before := *f.ring.roles.Load()
		if err := f.ring.load(); err != nil {
			log.Error("SIGHUP: key lists not reloaded, the previous keys stay in force", "err", err)
			return
		}
		// A connection's roles are fixed when it connects: a key whose entry changed
		// reconnects to take its new ones.
		n := b.CloseCurvePeers(func(k zmtp.CurveKey) bool {
			was, _ := before(k)
			now, ok := f.ring.authorize(k)
			return !ok || was != now
		})
		log.Info("SIGHUP: key lists reloaded", "authorized_keys", len(*f.ring.keys.Load()), "connections_closed", n)
	})
}

// onSIGHUP runs reload on each SIGHUP the process gets, one at a time, until ctx ends.
func onSIGHUP(ctx context.Context, reload func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				reload()
			}
		}
	}()
}

func addBrokerSecFlags(fs *flagSet) *brokerSecFlags {
	return &brokerSecFlags{
		secret:  fs.String("curve-secret", "", "`file` with the broker's CURVE secret key (a bare Z85 key or a czmq secret certificate, as `zerotask keygen` writes): CURVE on the ROUTER and the PUB socket"),
		clients: fs.String("authorized-clients", "", "`file` of the client public keys allowed to connect with CURVE (Z85, one per line, an optional name after white space, # comments)"),
		nodes:   fs.String("authorized-nodes", "", "`file` of the node public keys allowed to connect with CURVE (same format; a key may be in both files)"),
		admins:  fs.String("authorized-admins", "", "`file` of the admin public keys allowed to connect with CURVE (same format): they may also call and submit, read, wait on and revoke anyone's tasks, list, requeue, pause, resume and purge"),
		plainUsers: fs.String("plain-users", "", "`file` of the users allowed to connect with PLAIN (NAME ROLES HASH a line, as `zerotask passwd` prints them; roles client, node, admin); "+
			"PLAIN sends passwords in clear text: for loopback, ipc:// or a trusted network (read again on SIGHUP)"),
		insecure: fs.Bool("insecure", false, "allow binding a non-loopback address without authentication (anyone who can reach the port can submit tasks, or act as a node and read every task)"),
	}
}

// apply sets cfg.Security from the flags and enforces protected mode. The broker's own key is
// always allowed (only the holder of its secret can use it: the in-process node of `zerotask
// up` does).
func (f *brokerSecFlags) apply(cfg *broker.Config, log *slog.Logger) error {
	authenticated := false
	if *f.plainUsers != "" {
		if err := f.applyPlain(cfg, log); err != nil {
			return err
		}
		authenticated = true
	} else if *f.secret == "" {
		if *f.clients != "" || *f.nodes != "" || *f.admins != "" {
			return usagef("--authorized-clients, --authorized-nodes and --authorized-admins need --curve-secret")
		}
	} else {
		kp, err := zmtp.LoadCurveSecret(*f.secret)
		if err != nil {
			return fmt.Errorf("--curve-secret: %w", err)
		}
		ring := &keyring{own: kp.Public, clients: *f.clients, nodes: *f.nodes, admins: *f.admins}
		if err := ring.load(); err != nil {
			return err
		}
		f.ring = ring
		var auth zmtp.CurveAuth
		if *f.clients != "" || *f.nodes != "" || *f.admins != "" {
			authenticated = true
			auth = func(k zmtp.CurveKey, peer net.Addr) bool {
				if ring.allowed(k) {
					return true
				}
				log.Warn("CURVE key refused: not in --authorized-clients, --authorized-nodes or --authorized-admins", "key", k.String(), "peer", peer)
				return false
			}
		}
		cfg.Security = zmtp.CurveServer(kp, auth)
		if auth != nil {
			cfg.Authorize = ring.authorize
		}
		log.Info("CURVE enabled", "public_key", kp.Public.String(), "authorized_keys", len(*ring.keys.Load()))
	}
	// The CLI's rule is stricter than broker.New's: CURVE without key lists counts as
	// unauthenticated here, and once it passes, New's check is this one's.
	cfg.Insecure = *f.insecure
	if authenticated || *f.insecure {
		return nil
	}
	for _, ep := range []string{cfg.Listen, cfg.Pub} {
		if ep != "" && ep != broker.PubDisabled && !broker.LocalEndpoint(ep) {
			return fmt.Errorf("refusing to bind %s without authentication: anyone who reaches it can submit tasks or act as a node; "+
				"give --curve-secret with --authorized-clients/--authorized-nodes, bind a loopback address, or pass --insecure to accept the risk", ep)
		}
	}
	return nil
}

// peerSecFlags are the CURVE flags of a node or client command.
type peerSecFlags struct {
	server, secret           *string
	plainUser, plainPassFile *string
}

func addPeerSecFlags(fs *flagSet) *peerSecFlags {
	return &peerSecFlags{
		server:        fs.String("curve-server", os.Getenv("ZEROTASK_CURVE_SERVER"), "the broker's CURVE public `key` (Z85) or a file holding it: connect with CURVE ($ZEROTASK_CURVE_SERVER)"),
		secret:        fs.String("curve-secret", os.Getenv("ZEROTASK_CURVE_SECRET"), "`file` with this side's CURVE secret key; without it a fresh key pair is used, which only a broker accepting any key lets in ($ZEROTASK_CURVE_SECRET)"),
		plainUser:     fs.String("plain-user", os.Getenv("ZEROTASK_PLAIN_USER"), "connect with PLAIN as this `user`, the password from --plain-password-file or $ZEROTASK_PLAIN_PASSWORD ($ZEROTASK_PLAIN_USER)"),
		plainPassFile: fs.String("plain-password-file", "", "`file` whose first line is the PLAIN password of --plain-user"),
	}
}

// keys returns the broker's public key and this side's key pair; ok is false without
// --curve-server.
func (f *peerSecFlags) keys() (server zmtp.CurveKey, own zmtp.CurveKeyPair, ok bool, err error) {
	if *f.server == "" {
		if *f.secret != "" {
			return server, own, false, usagef("--curve-secret needs --curve-server")
		}
		return server, own, false, nil
	}
	if server, err = zmtp.LoadCurvePublic(*f.server); err != nil {
		return server, own, false, fmt.Errorf("--curve-server: %w", err)
	}
	if *f.secret == "" {
		own, err = zmtp.NewCurveKeyPair()
	} else if own, err = zmtp.LoadCurveSecret(*f.secret); err != nil {
		err = fmt.Errorf("--curve-secret: %w", err)
	}
	return server, own, err == nil, err
}

// mechanism returns the CURVE client mechanism, or nil without --curve-server.
func (f *peerSecFlags) mechanism() (zmtp.Mechanism, error) {
	if f == nil {
		return nil, nil
	}
	if *f.plainUser != "" {
		if *f.server != "" {
			return nil, usagef("--plain-user and --curve-server: connect with one mechanism, choose one")
		}
		pass, err := f.plainPassword()
		if err != nil {
			return nil, err
		}
		return zmtp.PlainClient(*f.plainUser, pass), nil
	}
	server, own, ok, err := f.keys()
	if !ok || err != nil {
		return nil, err
	}
	return zmtp.CurveClient(server, own), nil
}

func runKeygen(_ context.Context, io *stdio, args []string) error {
	fs := newFlagSet("keygen", "BASE", "Write a new CURVE key pair as czmq certificates: BASE (the public key, to give to\n"+
		"brokers and peers) and BASE_secret (mode 0600, to keep). Existing files are not overwritten.\n"+
		"Prints the public key.")
	if err := parse(fs, io, args, 1, 1); err != nil {
		return err
	}
	kp, err := zmtp.NewCurveKeyPair()
	if err != nil {
		return err
	}
	base := fs.Arg(0)
	if err := zmtp.WriteCurveKeyFiles(base, kp); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(io.out, "%s\n", kp.Public)
	return nil
}
