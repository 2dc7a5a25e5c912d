package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/dashboard"
	"github.com/zerotask/zerotask/internal/promtext"
	"github.com/zerotask/zerotask/protocol"
)

// httpFlags are --http and --http-token, of `zerotask broker`, `node` and `up`.
type httpFlags struct {
	addr, token *string
	tok         []byte // the token read by check
	// dashboard, when set, serves at / beside the metrics (the broker's web dashboard).
	dashboard http.Handler
}

func addHTTPFlags(fs *flagSet) *httpFlags {
	return &httpFlags{
		addr:  fs.String("http", "", "serve "+protocol.MetricsPath+" (Prometheus text format) and, on a broker, the live dashboard at / on this `address` (off when empty; a bare port or host-less address binds loopback)"),
		token: fs.String("http-token", "", "`file` holding the token every HTTP request must carry, as a bearer header or the cookie of the dashboard's /login form (required on a non-loopback --http address)"),
	}
}

// httpTimeouts bound a scrape's connection (the metrics are rendered in one go).
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 16 << 10
)

// httpAddr resolves --http: a bare port or ":port" binds loopback.
func httpAddr(a string) string {
	if !strings.Contains(a, ":") {
		return net.JoinHostPort("127.0.0.1", a)
	}
	if strings.HasPrefix(a, ":") {
		return "127.0.0.1" + a
	}
	return a
}

// loopbackAddr reports whether a host:port can only be reached from this machine.
func loopbackAddr(a string) bool { return broker.LocalEndpoint("tcp://" + a) }

// check validates --http and --http-token before anything starts: a non-loopback address
// without a token is refused, as the broker's own port is without authentication.
func (f *httpFlags) check() error {
	if *f.addr == "" {
		if *f.token != "" {
			return usagef("--http-token needs --http")
		}
		return nil
	}
	addr := httpAddr(*f.addr)
	if *f.token != "" {
		b, err := os.ReadFile(*f.token)
		if err != nil {
			return fmt.Errorf("--http-token: %w", err)
		}
		if f.tok = bytes.TrimSpace(b); len(f.tok) == 0 {
			return fmt.Errorf("--http-token: %s is empty", *f.token)
		}
	} else if !loopbackAddr(addr) {
		return fmt.Errorf("refusing to serve HTTP on non-loopback address %s without --http-token (anyone who can reach it could read the metrics)", addr)
	}
	return nil
}

// start serves the metrics that write renders on --http (checked by check) until ctx ends,
// and returns the bound address ("" when --http is not given).
func (f *httpFlags) start(ctx context.Context, log *slog.Logger, write func(io.Writer) error) (string, error) {
	if *f.addr == "" {
		return "", nil
	}
	token := f.tok
	ln, err := net.Listen("tcp", httpAddr(*f.addr))
	if err != nil {
		return "", fmt.Errorf("--http: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(protocol.MetricsPath, metricsHandler(write, log))
	if f.dashboard != nil {
		mux.Handle("/", f.dashboard)
	}
	srv := &http.Server{
		Handler:           dashboard.Protect(token, mux),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http: serve", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return ln.Addr().String(), nil
}

// metricsHandler answers GET and HEAD with the text format.
func metricsHandler(write func(io.Writer) error, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", promtext.ContentType)
		if err := write(w); err != nil {
			log.Debug("http: metrics not sent", "err", err)
		}
	})
}

// httpNote is what a command prints once --http serves ("" when off).
func httpNote(addr string) string {
	if addr == "" {
		return ""
	}
	return "metrics on http://" + addr + protocol.MetricsPath
}

// outWriter is io.Writer for the commands, whose *stdio parameter is named io.
type outWriter = io.Writer

// serveHTTP starts --http for a command and prints where it serves (a line a script or test
// reads after the command's first line).
func serveHTTP(ctx context.Context, out *stdio, f *httpFlags, log *slog.Logger, write func(io.Writer) error) error {
	addr, err := f.start(ctx, log, write)
	if err != nil || addr == "" {
		return err
	}
	fmt.Fprintln(out.out, httpNote(addr))
	if f.dashboard != nil {
		fmt.Fprintln(out.out, "dashboard on http://"+addr+"/")
	}
	return nil
}
