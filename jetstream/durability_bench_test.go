package jetstream_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// BenchmarkDurability measures what the guarantees against a crash of the
// server's machine cost (see the package documentation, "Not covered"):
// Forward, as BenchmarkForward's "forward" side ("record": 16-byte
// records, one message per record) and as BenchmarkForwardPacked
// ("packed": 64-byte records, 256 a message), into a file stream
//
//   - r1: of one replica, the default, that a PubAck does not put on disk;
//   - r1-sync: of one replica on servers that sync every write (sync
//     always);
//   - r3: of three replicas (a PubAck means a quorum holds the message);
//   - r3-sync: of three replicas on servers that sync every write.
//
// All four run on clusters of three servers in this process, on one
// machine (two clusters: one syncing always, one not), so replication
// costs CPU and loopback, not a network, and the servers' fsyncs share one
// disk. The client connects over loopback to the stream's leader, so an
// R3 publish pays replication, not an extra hop to the leader. Each reports
// records/s and, but r1, x-r1: its rate over r1's with the same load in the
// same process (0.5 = half as fast; with -count, r1's last run).
func BenchmarkDurability(b *testing.B) {
	plain := natstest.StartCluster(b, 3)
	synced := natstest.StartCluster(b, 3, natstest.SyncAlways)
	loads := []struct {
		name string
		run  func(*testing.B, jetstream.JetStream, string)
	}{
		{"record", forwardRecords},
		{"packed", forwardPacked},
	}
	r1 := make(map[string]float64) // r1's records/s by load
	for _, d := range []struct {
		name     string
		servers  []*server.Server
		replicas int
	}{
		{"r1", plain, 1},
		{"r1-sync", synced, 1},
		{"r3", plain, 3},
		{"r3-sync", synced, 3},
	} {
		j := durabilityStream(b, d.servers, d.name, d.replicas)
		b.Run(d.name, func(b *testing.B) {
			for _, l := range loads {
				b.Run(l.name, func(b *testing.B) {
					l.run(b, j, "dur."+d.name+"."+l.name)
					rate := recordRate(b)
					b.ReportMetric(rate, "records/s")
					if d.name == "r1" {
						r1[l.name] = rate
					} else if r1[l.name] > 0 {
						b.ReportMetric(rate/r1[l.name], "x-r1")
					}
				})
			}
		})
	}
}

// durabilityStream makes the file stream "DUR-<name>" capturing
// "dur.<name>.>" on servers (as ForwardStream configures it, with
// replicas), waits until its replicas are current and returns a JetStream
// context connected to its leader.
func durabilityStream(b *testing.B, servers []*server.Server, name string, replicas int) jetstream.JetStream {
	b.Helper()
	_, j := natstest.Connect(b, servers[0])
	cfg := bj.ForwardStream("DUR-"+name, "dur."+name+".>")
	cfg.Replicas = replicas
	if _, err := j.CreateStream(context.Background(), cfg); err != nil {
		b.Fatalf("create stream: %v", err)
	}
	leader := natstest.WaitStream(b, j, cfg.Name).Cluster.Leader
	for _, s := range servers {
		if s.Name() == leader {
			_, j = natstest.Connect(b, s)
			return j
		}
	}
	b.Fatalf("stream %s: leader %q is none of the cluster's servers", cfg.Name, leader)
	return nil
}
