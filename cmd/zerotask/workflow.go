package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// stdin is what `zerotask submit --workflow -` reads (tests replace it).
var stdin io.Reader = os.Stdin

// maxWorkflowFile bounds what --workflow reads: a graph travels in one message, and no broker
// takes more than its MaxMsgSize (1 MiB by default); a larger file is refused here at once.
const maxWorkflowFile = 64 << 20

// workflowParams returns broker.submit's params for the graph file content b: b itself when it
// is a params object (it has a "workflow" member), else {"workflow": b}; key, when not empty,
// is added (after the file's own, so it wins).
func workflowParams(b []byte, key string) ([]byte, error) {
	b = rawjson.TrimSpace(b)
	if !json.Valid(b) || len(b) == 0 || b[0] != '{' {
		return nil, usagef("--workflow: the file must hold a JSON object: a graph node, or the params of a workflow submit (docs/workflows.md)")
	}
	var p []byte
	if rawjson.Member(b, protocol.ParamWorkflow) != nil {
		p = append(p, b[:len(b)-1]...)
	} else {
		p = append(p, `{"`+protocol.ParamWorkflow+`":`...)
		p = append(p, b...)
	}
	if key != "" {
		p = protocol.AppendMember(p, protocol.MemberKey)
		p = codec.AppendString(p, key)
	}
	return append(p, '}'), nil
}

// readWorkflow reads the graph file (- for stdin).
func readWorkflow(name string) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("--workflow: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxWorkflowFile+1))
	if err != nil {
		return nil, fmt.Errorf("--workflow: %w", err)
	}
	if len(b) > maxWorkflowFile {
		return nil, usagef("--workflow: the file is larger than %d bytes", maxWorkflowFile)
	}
	return b, nil
}

// runSubmitWorkflow is `zerotask submit --workflow FILE`: submit the graph, print its id.
func runSubmitWorkflow(ctx context.Context, io *stdio, fs *flagSet, cf *clientFlags, file string, key string) error {
	if fs.NArg() > 0 {
		return usagef("--workflow takes no METHOD or ARGs: the graph names its methods")
	}
	for _, name := range []string{"queue", "priority", "delay", "eta", "max-attempts", "backoff", "max-backoff", "timeout", "params", "meta"} {
		if fs.set(name) {
			return usagef("--%s applies to a task, not to a workflow: set it on the graph's steps", name)
		}
	}
	b, err := readWorkflow(file)
	if err != nil {
		return err
	}
	p, err := workflowParams(b, key)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := cf.dial(ctx, fs.logger(io.err), 0)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	res, err := callRaw(ctx, io, c, protocol.MethodSubmit, p)
	if err != nil {
		return err
	}
	var ans struct{ ID string }
	if err := json.Unmarshal(res, &ans); err != nil || ans.ID == "" {
		return fmt.Errorf("bad broker.submit answer %s", strings.TrimSpace(string(res)))
	}
	fmt.Fprintln(io.out, ans.ID)
	return nil
}
