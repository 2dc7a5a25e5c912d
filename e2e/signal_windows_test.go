//go:build windows

package e2e

import "os"

// Windows cannot deliver SIGTERM to a child; os.Interrupt is not supported either, so the test
// that uses it kills instead (and its exit-status check does not apply there).
var sigterm = os.Kill
