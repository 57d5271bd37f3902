// Package natstest runs REAL NATS JetStream servers inside a test process:
// nats-server's own server.NewServer with JetStream on a temporary store,
// shut down (Shutdown, WaitForShutdown) in the test's cleanup. There is no
// fake server and no mock client.
//
// [Start] serves in-process connections only (DontListen): clients connect
// through nats.InProcessServer, with no socket. [StartLoopback] listens on
// 127.0.0.1 on a port the kernel picks and can be stopped and started again
// on the same store directory and port, for tests in which the server
// restarts under a running client. [StartCluster] runs several loopback
// servers routed into one JetStream cluster, for replicated streams
// ([WaitStream] waits until one's replicas are current); [SyncAlways]
// makes a server sync every write to disk.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyWait bounds how long a new server may take to accept connections.
const readyWait = 10 * time.Second

// Start runs an in-process JetStream server with its store in a temporary
// directory, shut down when tb ends. Each function given may change the
// server's options first (users and their permissions, say).
func Start(tb testing.TB, with ...func(*server.Options)) *server.Server {
	tb.Helper()
	o := &server.Options{
		JetStream:  true,
		StoreDir:   tb.TempDir(),
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	}
	return serve(tb, o, with)
}

// serve applies each of with to o, runs the server and shuts it down when
// tb ends (a cleanup registered after o's TempDir runs before its removal).
func serve(tb testing.TB, o *server.Options, with []func(*server.Options)) *server.Server {
	tb.Helper()
	for _, f := range with {
		f(o)
	}
	s := run(tb, o)
	tb.Cleanup(func() { shutdown(s) })
	return s
}

// Connect opens a client connection to s (in-process when s does not
// listen) and its JetStream context; the connection is closed when tb ends.
// Extra options come after the defaults and may override them.
func Connect(tb testing.TB, s *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	url := s.ClientURL()
	if s.Addr() == nil {
		url = ""
		opts = append([]nats.Option{nats.InProcessServer(s)}, opts...)
	}
	return connect(tb, url, opts...)
}

func connect(tb testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	j, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream context: %v", err)
	}
	return nc, j
}

// Loopback is a JetStream server listening on 127.0.0.1 that a test can
// stop and start again on the same store directory and port, so clients
// reconnect to it and find their streams, consumers and buckets.
type Loopback struct {
	tb   testing.TB
	opts server.Options
	s    *server.Server
}

// StartLoopback starts a loopback server; it is shut down when tb ends.
func StartLoopback(tb testing.TB) *Loopback {
	tb.Helper()
	l := &Loopback{tb: tb, opts: server.Options{
		JetStream: true,
		StoreDir:  tb.TempDir(),
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		NoSigs:    true,
		NoLog:     true,
	}}
	l.Start()
	l.opts.Port = l.s.Addr().(*net.TCPAddr).Port
	tb.Cleanup(l.Stop)
	return l
}

// URL is the server's client URL, the same across restarts.
func (l *Loopback) URL() string { return fmt.Sprintf("nats://%s:%d", l.opts.Host, l.opts.Port) }

// Server returns the running server, nil while it is stopped.
func (l *Loopback) Server() *server.Server { return l.s }

// Stop shuts the server down and waits until it has; it does nothing when
// the server is stopped.
func (l *Loopback) Stop() {
	if l.s != nil {
		shutdown(l.s)
		l.s = nil
	}
}

// Start starts the server again on the same store and port.
func (l *Loopback) Start() {
	l.tb.Helper()
	if l.s != nil {
		l.tb.Fatalf("natstest: Start: the server is running")
	}
	o := l.opts
	l.s = run(l.tb, &o)
}

// Connect opens a client connection to the loopback server that keeps
// trying to reconnect while the server is stopped (every 50 ms, without
// limit), and its JetStream context; it is closed when the test ends.
func (l *Loopback) Connect(opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	l.tb.Helper()
	base := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
	return connect(l.tb, l.URL(), append(base, opts...)...)
}

func run(tb testing.TB, o *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyWait) {
		shutdown(s)
		tb.Fatalf("natstest: server not ready for connections after %v", readyWait)
	}
	return s
}

func shutdown(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
