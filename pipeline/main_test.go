package pipeline_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// noLeaks fails t if a goroutine started during t is still running once t
// and its cleanups are done: testenv.Main checks the whole package, this
// pins a leak on the test that caused it. Call it first, so that its cleanup
// runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}
