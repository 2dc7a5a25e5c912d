package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dashboard"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// dashboardDialTimeout bounds the dashboard's connection to its own broker, made on its first
// call (the broker answers a hello only once it serves).
const dashboardDialTimeout = 10 * time.Second

// startDashboard runs the web dashboard of b until ctx ends and returns its routes. It reads
// b's state in process (snapshots), subscribes to b's PUB for task states, and makes its calls
// (lookups, buttons) as a client of b, with b's own CURVE key pair when it has one (the
// --curve-secret file: the broker always allows its own key), or its own PLAIN user.
func startDashboard(ctx context.Context, b *broker.Broker, bsec *brokerSecFlags, log *slog.Logger) (http.Handler, error) {
	var opts []client.Option
	var sec zmtp.Mechanism
	if secret := *bsec.secret; bsec.plain != nil {
		opts = append(opts, client.WithPlain(plainSelfUser, bsec.plain.selfPass))
		sec = bsec.plain.self()
	} else if secret != "" {
		kp, err := zmtp.LoadCurveSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("--curve-secret: %w", err)
		}
		opts = append(opts, client.WithCurve(kp.Public, kp))
		sec = zmtp.CurveClient(kp.Public, kp)
	}
	opts = append(opts, client.WithLogger(log))
	lc := &lazyClient{endpoint: b.Addr(), opts: opts}
	context.AfterFunc(ctx, lc.close)
	sub := b.PubAddr()
	if sub == "" {
		sub = protocol.NoEndpoint
	}
	d, err := dashboard.New(dashboard.Config{
		Snapshot: b.AppendSnapshot,
		Call:     lc.call,
		Sub:      sub,
		Security: sec,
		TaskID:   b.TaskID,
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	go func() { _ = d.Run(ctx) }()
	return d.Handler(), nil
}

// lazyClient dials its broker on the first call and keeps the connection.
type lazyClient struct {
	endpoint string
	opts     []client.Option

	mu     sync.Mutex
	c      *client.Client
	closed bool
}

func (l *lazyClient) get(ctx context.Context) (*client.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, client.ErrClosed
	}
	if l.c == nil {
		dctx, cancel := context.WithTimeout(ctx, dashboardDialTimeout)
		defer cancel()
		c, err := client.Dial(dctx, l.endpoint, l.opts...)
		if err != nil {
			return nil, err
		}
		l.c = c
	}
	return l.c, nil
}

func (l *lazyClient) call(ctx context.Context, method string, params []byte) ([]byte, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.CallRaw(ctx, nil, method, params)
}

func (l *lazyClient) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.c != nil {
		_ = l.c.Close()
	}
}
