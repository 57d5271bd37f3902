package jetstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// TestCredentials: the permissions README lists are enough for Forward
// (its start-up read included) and for a Publisher, with message gets
// through the stream's API or, on a stream that allows them, direct gets;
// Forward with a publish-only credential fails at construction.
func TestCredentials(t *testing.T) {
	const n = 50
	for _, tc := range []struct {
		name   string
		direct bool
		gets   []string
	}{
		{"message gets", false, []string{"$JS.API.STREAM.MSG.GET.FWD"}},
		{"direct gets", true, []string{"$JS.API.DIRECT.GET.FWD", "$JS.API.DIRECT.GET.FWD.>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent := append([]string{"fwd.n1", "fwd.pub",
				"$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.FWD",
				"$JS.API.CONSUMER.CREATE.FWD.>", "$JS.API.CONSUMER.MSG.NEXT.FWD.>", "$JS.API.CONSUMER.DELETE.FWD.>"}, tc.gets...)
			user := func(name string, pub []string) *server.User {
				return &server.User{Username: name, Password: name, Permissions: &server.Permissions{
					Publish:   &server.SubjectPermission{Allow: pub},
					Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
				}}
			}
			s := natstest.Start(t, func(o *server.Options) {
				o.Users = []*server.User{
					{Username: "admin", Password: "admin"},
					user("agent", agent),
					user("publish-only", []string{"fwd.n1"}),
				}
			})
			// The server answers a request it forbids with no reply; nats.go
			// reports the violation to the error handler.
			quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
			_, admin := natstest.Connect(t, s, nats.UserInfo("admin", "admin"))
			cfg := bj.ForwardStream("FWD", "fwd.>")
			cfg.AllowDirect = tc.direct
			st, err := admin.CreateStream(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			rb := newRing(t, 1<<16)
			p := newProducer(t, rb, 16)
			produce(t, p, n)
			// A previous run stored 20 records and did not acknowledge them:
			// the start-up read must find them.
			publishPrevious(t, admin, ackSource[rec16](t, rb), n, "fwd.n1", "n1", previousRun{msgs: ones(0, 19)})

			_, pubOnly := natstest.Connect(t, s, nats.UserInfo("publish-only", "publish-only"), quiet)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			src := ackSource[rec16](t, rb)
			if f, err := bj.Forward(ctx, src, pubOnly, "fwd.n1", bj.WithNode("n1")); err == nil {
				f.Close()
				t.Error("Forward with a publish-only credential: got no error")
			} else if !strings.Contains(err.Error(), `"fwd.n1"`) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %q, want one line naming the subject", err)
			}
			src.Close() // left to the caller

			_, j := natstest.Connect(t, s, nats.UserInfo("agent", "agent"), quiet)
			f := forward(t, t.Context(), ackSource[rec16](t, rb, pump.WithBatch(8, 0)), j, "fwd.n1", bj.WithNode("n1"))
			if err := flushWithin(t, f); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := checkStats(t, f); got.Skipped != 20 || got.Delivered != n {
				t.Errorf("got stats %+v, want %d delivered, 20 skipped", got, n)
			}
			checkOnce(t, streamRecordsOn(t, st, "fwd.n1"), n, true)

			pub, err := bj.NewPublisher[event](t.Context(), j, "fwd.pub")
			if err != nil {
				t.Fatal(err)
			}
			pub.C() <- event{Seq: 1}
			if err := pub.Close(); err != nil || pub.Stats().Delivered != 1 {
				t.Errorf("Publisher: got %v, stats %+v; want 1 delivered", err, pub.Stats())
			}
		})
	}
}
