// Package dashboard is the broker's live web dashboard: one page, embedded in the binary, that
// loads nothing from elsewhere and updates from Server-Sent Events.
//
// The page shows the nodes, the queues (depth, oldest age, rates in and out), throughput and
// latency charts over the last minutes, the tasks seen on the broker's state stream, recent
// failures with their error, a lookup of a task's record by id, and buttons that revoke a task
// or pause, resume and purge a queue.
//
// Its data comes from two places, both the broker's own: a snapshot of the routing state taken
// every Config.Interval while somebody watches (broker.Broker.AppendSnapshot), and the broker's
// PUB stream of task state changes (topic "state"), which the dashboard subscribes to once and
// fans out to every open page. Lookups and buttons are JSON-RPC calls to the broker
// (Config.Call); the caller decides with which credentials.
//
// Access control is Protect's: with a token set, every route but /login needs it, as a bearer
// header or as the cookie the login form sets.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

//go:embed web
var webFS embed.FS

// Defaults of Config.
const (
	DefaultInterval    = time.Second
	DefaultMaxClients  = 32
	DefaultMaxFailures = 50
	// callTimeout bounds one JSON-RPC call of the dashboard (a lookup, a button, the record
	// of a failure).
	callTimeout = 5 * time.Second
	// keepAlive is how often an idle event stream gets a comment line, so proxies and the
	// browser see a live connection.
	keepAlive = 15 * time.Second
	// clientBuffer bounds the events queued for one page; a page that falls behind loses
	// state events (the next snapshot corrects its counts).
	clientBuffer = 256
	// failureLookups bounds the failures waiting for their record to be fetched; past it a
	// failure is shown without its error.
	failureLookups = 64
	// failureListLimit is how many of the archive's newest failures are searched for a failed
	// task's record with its params.
	failureListLimit = 20
	// maxIDLen bounds a task id a lookup or button accepts.
	maxIDLen = 256
)

// Config configures a Dashboard. Snapshot and Call are required.
type Config struct {
	// Snapshot appends the broker's state as JSON (broker.Broker.AppendSnapshot).
	Snapshot func(dst []byte) []byte
	// Call makes a JSON-RPC call to the broker and returns its raw result (a client's
	// CallRaw): broker.status for lookups and failures, broker.revoke, broker.pause,
	// broker.resume and broker.purge for the buttons.
	Call func(ctx context.Context, method string, params []byte) ([]byte, error)
	// Sub is the broker's PUB endpoint; "" or protocol.NoEndpoint: no state stream (the page
	// then lives on snapshots alone).
	Sub string
	// Security is the mechanism of the subscription (nil: NULL).
	Security zmtp.Mechanism
	// TaskID returns the id of a task from its name, what the state stream shows
	// (broker.Broker.TaskID), so that the page's buttons and failure lookups can act on it;
	// nil, or ok false: the name is shown and looked up as it is.
	TaskID func(name string) (id string, ok bool)
	// Interval is the time between snapshots (0: DefaultInterval).
	Interval time.Duration
	// MaxClients bounds the open event streams; past it a page is answered 503
	// (0: DefaultMaxClients).
	MaxClients int
	// MaxFailures is how many recent failures the dashboard keeps (0: DefaultMaxFailures).
	MaxFailures int
	// Logger (nil: slog.Default()).
	Logger *slog.Logger
}

// Dashboard serves the page and its event stream. Create it with New, start its loops with
// Run, and mount Handler.
type Dashboard struct {
	cfg   Config
	log   *slog.Logger
	files http.Handler

	mu       sync.Mutex
	clients  map[chan []byte]struct{}
	last     []byte   // the last snapshot event
	failures [][]byte // recent failure events, oldest first
	done     chan struct{}
	lookups  chan failed
}

// New validates cfg and returns a Dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Snapshot == nil || cfg.Call == nil {
		return nil, errors.New("dashboard: Config.Snapshot and Config.Call are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return &Dashboard{
		cfg:     cfg,
		log:     cfg.Logger,
		files:   http.FileServer(http.FS(sub)),
		clients: make(map[chan []byte]struct{}),
		done:    make(chan struct{}),
		lookups: make(chan failed, failureLookups),
	}, nil
}

// Run takes snapshots, tails the state stream and fetches the records of failures until ctx
// ends; then every open event stream ends too. It returns nil when ctx ends.
func (d *Dashboard) Run(ctx context.Context) error {
	defer close(d.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); d.fetchFailures(ctx) }()
	go func() { defer wg.Done(); d.tailStates(ctx) }()
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	var buf []byte
	for {
		if d.watched() {
			buf = d.cfg.Snapshot(append(buf[:0], "event: snapshot\ndata: "...))
			buf = append(buf, "\n\n"...)
			ev := append([]byte(nil), buf...)
			d.mu.Lock()
			d.last = ev
			d.mu.Unlock()
			d.broadcast(ev)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watched reports whether a page is open.
func (d *Dashboard) watched() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.clients) > 0
}

// broadcast queues an event for every page, dropping it for a page whose queue is full.
func (d *Dashboard) broadcast(ev []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.clients {
		select {
		case c <- ev:
		default:
		}
	}
}

// stateNotice is the params of a broker.state notice.
type stateNotice struct {
	ID       string          `json:"id"`
	State    string          `json:"state"`
	Method   string          `json:"method,omitempty"`
	Queue    string          `json:"queue,omitempty"`
	Progress json.RawMessage `json:"progress,omitempty"`
}

// tailStates subscribes to the broker's state topic and forwards each batch to the pages as
// one "state" event (a JSON array of notices).
func (d *Dashboard) tailStates(ctx context.Context) {
	if d.cfg.Sub == "" || d.cfg.Sub == protocol.NoEndpoint {
		return
	}
	s := zmtp.NewSub(zmtp.Options{MaxMsgSize: protocol.DefaultMaxMsgSize, Security: d.cfg.Security, Logger: d.log})
	defer s.Close()
	if err := s.Subscribe([]byte(protocol.TopicState)); err != nil {
		d.log.Error("dashboard: subscribe", "err", err)
		return
	}
	if err := s.Connect(d.cfg.Sub); err != nil {
		d.log.Error("dashboard: connect to the state stream", "sub", d.cfg.Sub, "err", err)
		return
	}
	for {
		m, err := s.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("dashboard: state stream", "err", err)
			}
			return
		}
		var out []stateNotice
		if len(m.Frames) == 2 {
			if out, err = protocol.NoticeParams[stateNotice](m.Frames[1]); err != nil {
				d.log.Debug("dashboard: a state message that is not a batch of notices", "err", err)
			}
		}
		m.Release()
		if len(out) == 0 {
			continue
		}
		for i := range out {
			if d.cfg.TaskID != nil {
				if id, ok := d.cfg.TaskID(out[i].ID); ok {
					out[i].ID = id
				}
			}
			if out[i].Queue == "" {
				out[i].Queue = protocol.DefaultQueue
			}
			if out[i].State == protocol.StateFailure {
				select {
				case d.lookups <- failed{out[i].ID, time.Now().UnixMilli()}:
				default: // too many at once: shown in the task list, without the error
				}
			}
		}
		if !d.watched() {
			continue
		}
		data, err := json.Marshal(out)
		if err != nil {
			continue
		}
		d.broadcast(event("state", data))
	}
}

// failed is a failure seen on the state stream: the task's id and when it was seen (unix ms).
type failed struct {
	id string
	at int64
}

// fetchFailures reads the record of each failed task and keeps it as a recent failure, with
// "failed_ms": when the state stream said it failed (the page shows that time, not when the
// page learnt of it).
func (d *Dashboard) fetchFailures(ctx context.Context) {
	for {
		var f failed
		select {
		case <-ctx.Done():
			return
		case f = <-d.lookups:
		}
		rec, err := d.failureRecord(ctx, f.id)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Debug("dashboard: record of a failed task", "id", f.id, "err", err)
			rec, _ = json.Marshal(map[string]string{"id": f.id, "state": protocol.StateFailure})
		}
		if len(rec) > 2 && rec[0] == '{' {
			rec = append(strconv.AppendInt([]byte(`{"failed_ms":`), f.at, 10), append([]byte{','}, rec[1:]...)...)
		}
		ev := event("failure", rec)
		d.mu.Lock()
		d.failures = append(d.failures, ev)
		if len(d.failures) > d.cfg.MaxFailures {
			d.failures = append(d.failures[:0], d.failures[len(d.failures)-d.cfg.MaxFailures:]...)
		}
		d.mu.Unlock()
		d.broadcast(ev)
	}
}

// failureRecord returns the record of failed task id with its params: from the archive's
// newest failures (broker.list), which keep the params, else its record (broker.status).
func (d *Dashboard) failureRecord(ctx context.Context, id string) ([]byte, error) {
	page, err := d.call(ctx, protocol.MethodList, map[string]any{
		protocol.ParamState: protocol.StateFailure, protocol.ParamOrder: protocol.OrderNewest, protocol.ParamLimit: failureListLimit,
	})
	if err == nil {
		var p struct {
			Tasks []json.RawMessage `json:"tasks"`
		}
		if json.Unmarshal(page, &p) == nil {
			for _, t := range p.Tasks {
				var h struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(t, &h) == nil && h.ID == id {
					return t, nil
				}
			}
		}
	}
	return d.status(ctx, id)
}

// status calls broker.status for one task.
func (d *Dashboard) status(ctx context.Context, id string) ([]byte, error) {
	return d.call(ctx, protocol.MethodStatus, map[string]string{protocol.ParamID: id})
}

func (d *Dashboard) call(ctx context.Context, method string, params any) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return d.cfg.Call(ctx, method, p)
}

// event formats one Server-Sent Event whose data is one line of JSON.
func event(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// Handler returns the dashboard's routes: the page and its files at /, the event stream at
// /api/events, a task's record at /api/task?id=, and the buttons at /api/revoke, /api/pause,
// /api/resume, /api/purge and /api/requeue (POST).
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", pageHeaders(d.files))
	mux.HandleFunc("GET /api/events", d.serveEvents)
	mux.HandleFunc("GET /api/task", d.serveTask)
	mux.HandleFunc("POST /api/revoke", d.button(protocol.MethodRevoke, protocol.ParamID))
	mux.HandleFunc("POST /api/pause", d.button(protocol.MethodPause, protocol.ParamQueue))
	mux.HandleFunc("POST /api/resume", d.button(protocol.MethodResume, protocol.ParamQueue))
	mux.HandleFunc("POST /api/purge", d.button(protocol.MethodPurge, protocol.ParamQueue))
	mux.HandleFunc("POST /api/requeue", d.button(protocol.MethodRequeue, protocol.ParamID))
	return mux
}

// pageHeaders forbids the page anything from elsewhere (scripts, styles, connections, frames
// around it).
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// serveEvents streams snapshots, state changes and failures until the page goes away or Run
// ends.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c := make(chan []byte, clientBuffer)
	d.mu.Lock()
	if len(d.clients) >= d.cfg.MaxClients {
		d.mu.Unlock()
		http.Error(w, "too many dashboard pages open", http.StatusServiceUnavailable)
		return
	}
	d.clients[c] = struct{}{}
	backlog := append([][]byte(nil), d.failures...)
	if d.last != nil {
		backlog = append(backlog, d.last)
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.clients, c)
		d.mu.Unlock()
	}()
	// The server's write timeout is for scrapes; a stream lives as long as its page.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(ev []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(callTimeout))
		if _, err := w.Write(ev); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	for _, ev := range backlog {
		if !write(ev) {
			return
		}
	}
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case <-ka.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case ev := <-c:
			if !write(ev) {
				return
			}
		}
	}
}

// serveTask answers a task's record (broker.status) as JSON.
func (d *Dashboard) serveTask(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" || len(id) > maxIDLen {
		http.Error(w, "id: a task id is required", http.StatusBadRequest)
		return
	}
	rec, err := d.status(r.Context(), id)
	d.reply(w, rec, err)
}

// button returns the handler of a POST that calls method with one string param taken from the
// form field of the same name.
func (d *Dashboard) button(method, param string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// A cross-site form cannot set this header, and a cross-site script cannot send it
		// without a preflight the server never grants: the buttons cannot be forged.
		if r.Header.Get(RequestHeader) == "" {
			http.Error(w, "missing "+RequestHeader+" header", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		v := strings.TrimSpace(r.FormValue(param))
		if v == "" || len(v) > maxIDLen {
			http.Error(w, param+": required", http.StatusBadRequest)
			return
		}
		res, err := d.call(r.Context(), method, map[string]string{param: v})
		d.reply(w, res, err)
	}
}

// RequestHeader must be present on the dashboard's POST requests (its page sends it).
const RequestHeader = "X-Zerotask-Request"

// reply writes a call's raw JSON result, or its error as {"error": message} with 502.
func (d *Dashboard) reply(w http.ResponseWriter, res []byte, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		b, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = w.Write(b)
		return
	}
	_, _ = w.Write(res)
}
