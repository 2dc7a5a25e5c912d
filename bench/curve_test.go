package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
)

// TestEnvCurve: with Curve the client, the node and the broker speak CURVE (a call is
// answered) and a client without CURVE gets nothing from that broker; Close removes any key
// files.
func TestEnvCurve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := NewEnv(ctx, EnvConfig{Nodes: 1, Curve: true})
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	defer func() {
		if err := env.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	res, err := env.Client.CallRaw(ctx, nil, "add", []byte("[2,3]"))
	if err != nil || string(res) != "5" {
		t.Fatalf("add over CURVE: %s, %v", res, err)
	}
	short, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	if plain, err := client.Dial(short, env.Endpoint); err == nil {
		plain.Close()
		t.Fatal("a NULL client reached a CURVE broker")
	}
	if _, err := NewEnv(ctx, EnvConfig{Broker: env.Endpoint, Curve: true}); err == nil {
		t.Fatal("Curve with an external broker was accepted")
	}
	c, err := newCurveSetup()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.writeFiles(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(c.dir)
	if err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("key directory %v (%v): must be private", st.Mode().Perm(), err)
	}
	c.remove()
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Fatalf("key directory left behind: %v", err)
	}
}
