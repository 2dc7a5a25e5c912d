package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/zerotask/zerotask/zmtp"
)

// curveSetup is the CURVE keys of one run with EnvConfig.Curve: the broker's, one shared by the
// nodes and the client's, made fresh, and for child processes written to a private temporary
// directory (removed by Env.Close) as the flags of `zerotask broker` and `zerotask node` take
// them.
type curveSetup struct {
	broker, node, client zmtp.CurveKeyPair
	dir                  string // "" until files are written
}

func newCurveSetup() (*curveSetup, error) {
	var c curveSetup
	for _, kp := range []*zmtp.CurveKeyPair{&c.broker, &c.node, &c.client} {
		k, err := zmtp.NewCurveKeyPair()
		if err != nil {
			return nil, fmt.Errorf("bench: CURVE keys: %w", err)
		}
		*kp = k
	}
	return &c, nil
}

// server is the broker's mechanism: the nodes' and the client's keys are allowed.
func (c *curveSetup) server() zmtp.Mechanism {
	return zmtp.CurveServer(c.broker, zmtp.CurveAllow(c.node.Public, c.client.Public))
}

// writeFiles writes the key files and lists for child processes.
func (c *curveSetup) writeFiles() error {
	dir, err := os.MkdirTemp("", "zerotask-bench-curve-")
	if err != nil {
		return fmt.Errorf("bench: CURVE key directory: %w", err)
	}
	c.dir = dir
	if err := zmtp.WriteCurveKeyFiles(filepath.Join(dir, "broker"), c.broker); err != nil {
		return fmt.Errorf("bench: CURVE key files: %w", err)
	}
	if err := zmtp.WriteCurveKeyFiles(filepath.Join(dir, "node"), c.node); err != nil {
		return fmt.Errorf("bench: CURVE key files: %w", err)
	}
	for name, k := range map[string]zmtp.CurveKey{"clients": c.client.Public, "nodes": c.node.Public} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(k.String()+" bench\n"), 0o600); err != nil {
			return fmt.Errorf("bench: CURVE key list: %w", err)
		}
	}
	return nil
}

func (c *curveSetup) brokerArgs() []string {
	return []string{"--curve-secret", filepath.Join(c.dir, "broker_secret"),
		"--authorized-clients", filepath.Join(c.dir, "clients"), "--authorized-nodes", filepath.Join(c.dir, "nodes")}
}

func (c *curveSetup) nodeArgs() []string {
	return []string{"--curve-server", c.broker.Public.String(), "--curve-secret", filepath.Join(c.dir, "node_secret")}
}

func (c *curveSetup) remove() {
	if c != nil && c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}
