package zmtp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every socket, connection, writer
// and child-process reader must be gone when the tests end. It is the package's only TestMain
// (internal and external test files share one test binary, which allows one).
//
// One goroutine is ignored, and it is not ours: go-zeromq/zmq4 v0.17.0 starts a writer
// goroutine per PUB socket (pubMWriter.run) that its Close never stops, so each zmq4 PUB used
// as a reference peer leaks it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"))
}
