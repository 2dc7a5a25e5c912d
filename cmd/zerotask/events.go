package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// event is one line of `zerotask events`: a broker.state notice and when it was received.
type event struct {
	Time   string `json:"time"`
	ID     string `json:"id"`
	State  string `json:"state"`
	Method string `json:"method,omitempty"`
	Queue  string `json:"queue,omitempty"`
}

// eventsMaxMsg bounds a state message the command receives (a broker's default message size).
const eventsMaxMsg = protocol.DefaultMaxMsgSize

func runEvents(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("events", "", "Tail the broker's state stream (its PUB socket's \"state\" topic) and print each task\n"+
		"state change as one JSON line: {\"time\",\"id\",\"state\",\"method\",\"queue\"}. The stream is lossy\n"+
		"(a slow reader misses changes) and starts when the subscription does. Stops on SIGINT/SIGTERM,\n"+
		"or after --count events.").withLogLevel(slog.LevelWarn)
	def := defaultPub
	if v := os.Getenv("ZEROTASK_PUB"); v != "" {
		def = v
	}
	sub := fs.String("sub", def, "broker PUB `endpoint` to subscribe to ($ZEROTASK_PUB overrides the default)")
	methods := fs.String("method", "", "print only these methods (comma-separated)")
	queues := fs.String("queue", "", "print only these queues (comma-separated; \""+protocol.DefaultQueue+"\" is the default one)")
	states := fs.String("state", "", "print only these states (comma-separated: QUEUED, RUNNING, SUCCESS, FAILURE, RETRY, REVOKED, EXPIRED)")
	count := fs.Int("count", 0, "exit after printing this many events (0 = no limit)")
	heartbeat := fs.Duration("heartbeat", protocol.DefaultHeartbeatInterval, "heartbeat interval; the broker is presumed gone after 3 silent intervals (the subscription reconnects)")
	sec := addPeerSecFlags(fs)
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	if *count < 0 || *heartbeat <= 0 {
		return usagef("--count must not be negative and --heartbeat must be positive")
	}
	wantState := csvSet(strings.ToUpper(*states))
	for s := range wantState {
		if !knownState(s) {
			return usagef("--state: unknown state %q", s)
		}
	}
	wantMethod, wantQueue := csvSet(*methods), csvSet(*queues)
	mech, err := sec.mechanism()
	if err != nil {
		return err
	}
	log := fs.logger(io.err)
	s := zmtp.NewSub(zmtp.Options{HeartbeatInterval: *heartbeat, MaxMsgSize: eventsMaxMsg, Security: mech, Logger: log})
	defer s.Close()
	if err := s.Subscribe([]byte(protocol.TopicState)); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := s.Connect(*sub); err != nil {
		return fmt.Errorf("connect %s: %w", *sub, err)
	}
	out := bufio.NewWriter(io.out)
	enc := json.NewEncoder(out)
	printed := 0
	for {
		m, err := s.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		var notes []event
		if len(m.Frames) == 2 {
			if notes, err = protocol.NoticeParams[event](m.Frames[1]); err != nil {
				log.Warn("events: a state message that is not a batch of notices", "err", err)
			}
		}
		m.Release()
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for _, e := range notes {
			if e.Queue == "" {
				e.Queue = protocol.DefaultQueue
			}
			if !match(wantState, e.State) || !match(wantMethod, e.Method) || !match(wantQueue, e.Queue) {
				continue
			}
			e.Time = now
			if err := enc.Encode(&e); err != nil {
				return err
			}
			printed++
			if *count > 0 && printed == *count {
				return out.Flush()
			}
		}
		if err := out.Flush(); err != nil {
			return err // stdout closed (a reader such as head is done)
		}
	}
}

// csvSet splits a comma-separated flag into a set (nil: no filter).
func csvSet(list string) map[string]bool {
	var m map[string]bool
	for _, v := range strings.Split(list, ",") {
		if v = strings.TrimSpace(v); v != "" {
			if m == nil {
				m = make(map[string]bool)
			}
			m[v] = true
		}
	}
	return m
}

func match(want map[string]bool, v string) bool { return want == nil || want[v] }

func knownState(s string) bool {
	switch s {
	case protocol.StateQueued, protocol.StateRunning, protocol.StateSuccess, protocol.StateFailure,
		protocol.StateRetry, protocol.StateRevoked, protocol.StateExpired:
		return true
	}
	return false
}
