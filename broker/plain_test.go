package broker

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// plainWorld is a PLAIN broker whose users file lists a client, a node and an admin.
func plainWorld(t *testing.T) (*Broker, *PlainUsers) {
	t.Helper()
	file := "# users\n" +
		"alice client " + HashPassword("alice-pw") + "\n" +
		"worker node " + HashPassword("worker-pw") + "\n\n" +
		"root admin,node " + HashPassword("root-pw") + "\n"
	users, err := ParsePlainUsers("users", bufio.NewReader(strings.NewReader(file)))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Security: users.Server(), AuthorizeUser: users.Authorize, Logger: discardLogger()})
	return b, users
}

func dialPlain(t *testing.T, b *Broker, user, pass string) (*tpeer, chan zmtp.Event) {
	t.Helper()
	events := make(chan zmtp.Event, 16)
	s := zmtp.NewSocket(zmtp.Dealer, zmtp.Options{
		Security:          zmtp.PlainClient(user, pass),
		ReconnectInterval: time.Hour,
		Logger:            discardLogger(),
		Monitor: func(e zmtp.Event) {
			if e.Type == zmtp.EventDisconnected || e.Type == zmtp.EventHandshakeFailed {
				select {
				case events <- e:
				default:
				}
			}
		},
	})
	if err := s.Connect(b.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &tpeer{t: t, s: s}, events
}

// TestPlainRoles: PLAIN users get the roles of the users file: a client cannot say hello as a
// node (refused -32013, connection closed), a node cannot submit, a wrong password or an
// unknown user does not connect, the submitter is the user's name, and ClosePlainPeers drops a
// removed user's connections.
func TestPlainRoles(t *testing.T) {
	b, _ := plainWorld(t)
	alice, events := dialPlain(t, b, "alice", "alice-pw")
	if code := errCode(t, alice.call(nodeHello)); code != protocol.CodeForbidden {
		t.Fatalf("client hello as node: code %d", code)
	}
	select {
	case <-events:
	case <-time.After(wait):
		t.Fatal("the client's connection was not closed after its node hello")
	}
	alice, _ = dialPlain(t, b, "alice", "alice-pw")
	id := submit(t, alice, "work", "[1]")
	if rec := status(t, alice, id); rec.State != protocol.StateQueued {
		t.Fatalf("alice's task %+v", rec)
	}
	if rec := decodeResp(t, alice.call(`{"jsonrpc":"2.0","id":1,"method":"broker.status","params":{"id":"`+id+`"}}`)); !strings.Contains(string(rec.Result), `"submitter":"alice"`) {
		t.Fatalf("record %s", rec.Result)
	}
	worker, _ := dialPlain(t, b, "worker", "worker-pw")
	if code := errCode(t, worker.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"work"}}`)); code != protocol.CodeForbidden {
		t.Fatalf("node submit: code %d", code)
	}
	root, _ := dialPlain(t, b, "root", "root-pw")
	if rec := status(t, root, id); rec.State != protocol.StateQueued {
		t.Fatalf("admin's status of alice's task %+v", rec)
	}
	for _, cred := range [][2]string{{"alice", "wrong"}, {"mallory", "alice-pw"}, {"", ""}} {
		_, ev := dialPlain(t, b, cred[0], cred[1])
		select {
		case e := <-ev:
			if e.Type != zmtp.EventHandshakeFailed {
				t.Fatalf("%q/%q: event %v", cred[0], cred[1], e.Type)
			}
		case <-time.After(wait):
			t.Fatalf("%q/%q: no handshake failure", cred[0], cred[1])
		}
	}
	if n := b.ClosePlainPeers(func(user string) bool { return user == "alice" }); n != 1 {
		t.Fatalf("ClosePlainPeers closed %d, want alice's 1", n)
	}
}

// TestPlainUsersFile: the users file's errors name their line; hashes past the bounds are
// refused.
func TestPlainUsersFile(t *testing.T) {
	good := HashPassword("pw")
	for _, tc := range []struct{ name, file, err string }{
		{"fields", "alice client\n", "users:1: want NAME ROLES HASH"},
		{"role", "alice root " + good + "\n", `role "root"`},
		{"hash", "alice client plain-text\n", "not an argon2id hash"},
		{"argon2i", "alice client $argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n", "not an argon2id hash"},
		{"memory", "alice client $argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n", "out of bounds"},
		{"time", "alice client $argon2id$v=19$m=19456,t=11,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n", "out of bounds"},
		{"twice", "a client " + good + "\n#\na node " + good + "\n", "users:3: user \"a\" listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlainUsers("users", bufio.NewReader(strings.NewReader(tc.file)))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	u, err := ParsePlainUsers("users", bufio.NewReader(strings.NewReader("a client "+good+"\n")))
	if err != nil || u.Len() != 1 || !u.Verify("a", "pw", nil) || !u.Verify("a", "pw", nil) || u.Verify("a", "pW", nil) || u.Verify("b", "pw", nil) {
		t.Fatalf("users %v, %v", u, err)
	}
}

// FuzzParsePlainUsers: any users file parses or fails with an error, never a panic, and what
// parses keeps names within MaxUserName.
func FuzzParsePlainUsers(f *testing.F) {
	f.Add("alice client,admin $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n")
	f.Add("# c\n\nbob node $argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA\n")
	f.Add("x client $argon2id$v=19$m=,t=2,p=1$$\n")
	f.Fuzz(func(t *testing.T, file string) {
		u, err := ParsePlainUsers("f", bufio.NewReader(strings.NewReader(file)))
		if err != nil {
			return
		}
		for name, e := range u.users {
			if len(name) > MaxUserName || e.hash.memory > maxArgonMemory || e.hash.time > maxArgonTime {
				t.Fatalf("parsed out of bounds: %q %+v", name, e.hash)
			}
		}
	})
}
