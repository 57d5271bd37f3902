package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterWait bounds how long a new cluster may take to elect its
// JetStream meta leader, and a replicated stream its leader: a server
// campaigns at once when it bootstraps, but if that first campaign finds
// no quorum (its routes not up yet) the next waits a Raft election timeout
// (4 to 9 seconds).
const clusterWait = 30 * time.Second

// pollEvery is how often a wait for a cluster's state looks again.
const pollEvery = 10 * time.Millisecond

// StartCluster runs n JetStream servers in this process as one cluster:
// each listens on 127.0.0.1 for clients and for routes (ports the kernel
// picked), has its own name and store directory, and routes to all the
// others. It returns once the cluster has formed and elected its JetStream
// meta leader; the servers are shut down when tb ends. Each function given
// may change every server's options first (SyncAlways, say). Clients
// connect with [Connect].
//
// JetStream sizes its meta group from the routes a server is configured
// with, so every server must know every route port before it starts: they
// are picked by listening on port 0 and closing, which leaves a short
// window in which another process may take one.
func StartCluster(tb testing.TB, n int, with ...func(*server.Options)) []*server.Server {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: StartCluster: %d servers", n)
	}
	// Route ports, then client ports, picked together so that no server's
	// client listener can take another's route port.
	ports := freePorts(tb, 2*n)
	ports, clients := ports[:n], ports[n:]
	urls := make([]string, n)
	for i, p := range ports {
		urls[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	routes := server.RoutesFromStr(strings.Join(urls, ","))
	servers := make([]*server.Server, 0, n)
	for i, p := range ports {
		o := &server.Options{
			ServerName: fmt.Sprintf("S-%d", i+1),
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			Host:       "127.0.0.1",
			Port:       clients[i],
			Cluster: server.ClusterOpts{
				Name: "natstest",
				Host: "127.0.0.1",
				Port: p,
			},
			Routes: routes,
			NoSigs: true,
			NoLog:  true,
		}
		servers = append(servers, serve(tb, o, with))
	}
	waitFor(tb, "a JetStream meta leader with every server current", func() bool {
		for _, s := range servers {
			if !s.JetStreamIsLeader() {
				continue
			}
			if len(s.JetStreamClusterPeers()) != n {
				return false
			}
			for _, s := range servers {
				if !s.JetStreamIsCurrent() {
					return false
				}
			}
			return true
		}
		return false
	})
	return servers
}

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment
// ago.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: pick a port: %v", err)
		}
		defer l.Close() // held until all are picked, so they differ
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// SyncAlways makes a server sync its file store to disk after every write,
// before the PubAck (the server's "sync: always"), instead of every two
// minutes; give it to Start or StartCluster.
func SyncAlways(o *server.Options) { o.SyncAlways = true }

// WaitStream waits until the stream name has a leader and every one of its
// replicas is current, as the stream's info reports it, and returns that
// info. An R1 stream's leader is the server holding it; a standalone
// server reports no cluster, and its stream is ready once it answers.
func WaitStream(tb testing.TB, j jetstream.JetStream, name string) *jetstream.StreamInfo {
	tb.Helper()
	var info *jetstream.StreamInfo
	waitFor(tb, "stream "+name+" with a leader and every replica current", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := j.Stream(ctx, name)
		if err != nil {
			return false
		}
		i, err := st.Info(ctx)
		if err != nil {
			return false
		}
		if i.Cluster == nil && i.Config.Replicas <= 1 {
			info = i
			return true
		}
		if i.Cluster == nil || i.Cluster.Leader == "" || len(i.Cluster.Replicas) != max(i.Config.Replicas, 1)-1 {
			return false
		}
		for _, r := range i.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		info = i
		return true
	})
	return info
}

// waitFor polls cond until it holds, failing tb after clusterWait.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.Now().Add(clusterWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: no %s after %v", what, clusterWait)
		}
		<-tick.C
	}
}
