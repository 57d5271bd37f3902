package natstest_test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestStart(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	ctx := t.Context()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := j.Publish(ctx, "s.a", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 1 {
		t.Errorf("got sequence %d, want 1", ack.Sequence)
	}
}

// TestLoopbackRestart: a stream and its messages survive a restart on the
// same store, and a client configured by Connect reconnects by itself.
func TestLoopbackRestart(t *testing.T) {
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	ctx := t.Context()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Publish(ctx, "s.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	url := l.URL()
	l.Stop()
	l.Start()
	if got := l.URL(); got != url {
		t.Errorf("got URL %s after the restart, want %s", got, url)
	}
	ack, err := j.Publish(ctx, "s.a", []byte("y"), jetstream.WithRetryAttempts(100))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 2 {
		t.Errorf("got sequence %d after the restart, want 2", ack.Sequence)
	}
}

// TestCluster: an R3 stream on a cluster of three accepts a publish and
// reports a leader and two current replicas, each on another server.
func TestCluster(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	if len(servers) != 3 {
		t.Fatalf("got %d servers, want 3", len(servers))
	}
	_, j := natstest.Connect(t, servers[0])
	ctx := t.Context()
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage, Replicas: 3}
	if _, err := j.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	info := natstest.WaitStream(t, j, "S")
	ack, err := j.Publish(ctx, "s.a", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 1 {
		t.Errorf("got sequence %d, want 1", ack.Sequence)
	}
	names := map[string]bool{info.Cluster.Leader: true}
	for _, r := range info.Cluster.Replicas {
		names[r.Name] = true
	}
	if len(names) != 3 {
		t.Errorf("got leader %q and replicas %v, want three distinct servers", info.Cluster.Leader, info.Cluster.Replicas)
	}
	for _, s := range servers {
		if !names[s.Name()] {
			t.Errorf("server %s holds no replica of the stream", s.Name())
		}
	}
}

// TestSyncAlways: a server given SyncAlways runs JetStream with it, and
// one without does not.
func TestSyncAlways(t *testing.T) {
	for _, tc := range []struct {
		name string
		with []func(*server.Options)
		want bool
	}{
		{"default", nil, false},
		{"SyncAlways", []func(*server.Options){natstest.SyncAlways}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t, tc.with...)
			cfg := s.JetStreamConfig()
			if cfg == nil {
				t.Fatal("got no JetStream config")
			}
			if cfg.SyncAlways != tc.want {
				t.Errorf("got SyncAlways %v, want %v", cfg.SyncAlways, tc.want)
			}
		})
	}
}
