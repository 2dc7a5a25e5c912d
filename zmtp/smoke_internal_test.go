package zmtp

import (
	"context"
	"testing"
	"time"
)

func TestSmokeDealerRouter(t *testing.T) {
	r := NewRouter(Options{})
	defer r.Close()
	if err := r.Bind("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	d := NewDealer(Options{Identity: []byte("d1")})
	defer d.Close()
	if err := d.Connect(r.LastEndpoint()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.SendFrames(ctx, []byte("hello"), []byte("world")); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%q", m.Frames)
	if err := r.SendFrames(ctx, m.Frames[0], []byte("back")); err != nil {
		t.Fatal(err)
	}
	m.Release()
	m, err = d.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%q", m.Frames)
	m.Release()
}

func TestSmokePlain(t *testing.T) {
	r := NewRouter(Options{Security: PlainServer(PlainCredentials(map[string]string{"u": "p"})), Monitor: func(e Event) { t.Logf("srv %v %v", e.Type, e.Err) }})
	defer r.Close()
	if err := r.Bind("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	d := NewDealer(Options{Security: PlainClient("u", "p"), Monitor: func(e Event) { t.Logf("cli %v %v", e.Type, e.Err) }})
	defer d.Close()
	d.Connect(r.LastEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.SendFrames(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Release()
}
