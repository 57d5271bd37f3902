package jetstream_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// limit is the value type of the mirrored maps.
type limit struct {
	Max   uint32
	Flags uint32
}

// key is the bucket key of k: base64url, no padding, of its binary encoding.
func key(k uint32) string {
	return base64.RawURLEncoding.EncodeToString(binary.NativeEndian.AppendUint32(nil, k))
}

func value(v limit) []byte {
	b, _ := binary.Append(nil, binary.NativeEndian, v)
	return b
}

func newHash(t *testing.T, name string, keySize, valueSize, maxEntries uint32) *ebpf.Map {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: keySize, ValueSize: valueSize, MaxEntries: maxEntries})
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newBucket(t *testing.T, j jetstream.JetStream, name string) jetstream.KeyValue {
	t.Helper()
	kv, err := j.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: name})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return kv
}

// contents reads the whole map.
func contents(t *testing.T, m *ebpf.Map) map[uint32]limit {
	t.Helper()
	got := make(map[uint32]limit)
	var k uint32
	var v limit
	it := m.Iterate()
	for it.Next(&k, &v) {
		got[k] = v
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate map: %v", err)
	}
	return got
}

func put(t *testing.T, kv jetstream.KeyValue, k string, v []byte) uint64 {
	t.Helper()
	rev, err := kv.Put(t.Context(), k, v)
	if err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
	return rev
}

func synced[K, V any](t *testing.T, mi *bj.Mirror[K, V]) {
	t.Helper()
	select {
	case <-mi.Synced():
	case <-mi.Done():
		t.Fatalf("mirror stopped before it synced: %v", mi.Wait())
	}
}

func wantMap(t *testing.T, m *ebpf.Map, want map[uint32]limit) {
	t.Helper()
	if got := contents(t, m); !maps.Equal(got, want) {
		t.Errorf("got map %v, want %v", got, want)
	}
}

// TestMirror: the snapshot replaces the map's contents (an entry the
// bucket lacks is deleted, one it has is overwritten), then puts and
// deletes follow live; Close leaves the map as it is.
func TestMirror(t *testing.T) {
	m := newHash(t, "limits", 4, 8, 16)
	for k, v := range map[uint32]limit{1: {Max: 99}, 5: {Max: 5}} {
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	kv := newBucket(t, j, "limits")
	put(t, kv, key(1), value(limit{Max: 10}))
	put(t, kv, key(2), value(limit{Max: 20, Flags: 1}))
	put(t, kv, key(3), value(limit{Max: 30}))
	if err := kv.Delete(t.Context(), key(3)); err != nil {
		t.Fatal(err)
	}
	mi, err := bj.NewMirror[uint32, limit](t.Context(), kv, m)
	if err != nil {
		t.Fatal(err)
	}
	synced(t, mi)
	wantMap(t, m, map[uint32]limit{1: {Max: 10}, 2: {Max: 20, Flags: 1}})

	put(t, kv, key(4), value(limit{Max: 40}))
	put(t, kv, key(1), value(limit{Max: 11}))
	if err := kv.Delete(t.Context(), key(2)); err != nil {
		t.Fatal(err)
	}
	rev := put(t, kv, key(6), value(limit{Max: 60}))
	if err := mi.WaitRevision(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	want := map[uint32]limit{1: {Max: 11}, 4: {Max: 40}, 6: {Max: 60}}
	wantMap(t, m, want)

	if err := mi.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantMap(t, m, want)
	st := mi.Stats()
	identity(t, "mirror", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
	// 5, missing from the snapshot, and 2, deleted live (the snapshot's
	// delete of 3 found nothing to delete).
	if st.Deleted != 2 {
		t.Errorf("got %d deleted, want 2", st.Deleted)
	}
}

// TestMirrorDecoders: plain names put with another tool are read with
// WithKeyDecoder and WithValueDecoder.
func TestMirrorDecoders(t *testing.T) {
	type comm [16]byte
	m := newHash(t, "blocked", 16, 1, 8)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	kv := newBucket(t, j, "blocked")
	put(t, kv, "curl", []byte("yes"))
	rev := put(t, kv, "wget", []byte("no"))
	name := func(s string) (comm, error) {
		var c comm
		if len(s) >= len(c) {
			return c, errTest
		}
		copy(c[:], s)
		return c, nil
	}
	yes := func(b []byte) (bool, error) { return string(b) == "yes", nil }
	mi, err := bj.NewMirror[comm, bool](t.Context(), kv, m, bj.WithKeyDecoder(name), bj.WithValueDecoder(yes))
	if err != nil {
		t.Fatal(err)
	}
	if err := mi.WaitRevision(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want byte
	}{{"curl", 1}, {"wget", 0}} {
		k, _ := name(tc.name)
		var got byte
		if err := m.Lookup(k, &got); err != nil || got != tc.want {
			t.Errorf("%s: got %d (%v), want %d", tc.name, got, err, tc.want)
		}
	}
	if err := mi.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorWrongSize: a value of the wrong size is counted and its key
// treated as absent: deleted from the map if it was there.
func TestMirrorWrongSize(t *testing.T) {
	m := newHash(t, "sizes", 4, 8, 8)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	kv := newBucket(t, j, "sizes")
	put(t, kv, key(1), value(limit{Max: 1}))
	put(t, kv, key(2), []byte{1, 2, 3})
	put(t, kv, "x.y", value(limit{})) // a valid KV key, but no base64url
	mi, err := bj.NewMirror[uint32, limit](t.Context(), kv, m)
	if err != nil {
		t.Fatal(err)
	}
	synced(t, mi)
	wantMap(t, m, map[uint32]limit{1: {Max: 1}})
	rev := put(t, kv, key(1), make([]byte, 9))
	if err := mi.WaitRevision(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	wantMap(t, m, map[uint32]limit{})
	if err := mi.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := mi.Stats(), (bj.Stats{Received: 4, Delivered: 1, DecodeErrors: 3, Deleted: 1}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
}

// TestMirrorFull: a put the full map cannot hold is counted Dropped and the
// mirror goes on; a later put finds room once a delete made some.
func TestMirrorFull(t *testing.T) {
	m := newHash(t, "small", 4, 8, 2)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	kv := newBucket(t, j, "small")
	for k := range uint32(3) {
		put(t, kv, key(k), value(limit{Max: k}))
	}
	mi, err := bj.NewMirror[uint32, limit](t.Context(), kv, m)
	if err != nil {
		t.Fatal(err)
	}
	synced(t, mi)
	if got := len(contents(t, m)); got != 2 {
		t.Errorf("got %d entries, want 2 (the map is full)", got)
	}
	if err := kv.Delete(t.Context(), key(0)); err != nil {
		t.Fatal(err)
	}
	rev := put(t, kv, key(2), value(limit{Max: 22}))
	if err := mi.WaitRevision(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	wantMap(t, m, map[uint32]limit{1: {Max: 1}, 2: {Max: 22}})
	if err := mi.Close(); err != nil {
		t.Fatal(err)
	}
	st := mi.Stats()
	if st.Dropped != 1 || st.Received != 5 {
		t.Errorf("got stats %+v, want 5 received, 1 dropped", st)
	}
	identity(t, "mirror", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
}

// TestMirrorRestart: the server restarts on its store under a running
// mirror, and the mirror's own connection is cut while the bucket changes;
// the mirror resumes from its last revision and misses nothing.
func TestMirrorRestart(t *testing.T) {
	m := newHash(t, "restart", 4, 8, 64)
	l := natstest.StartLoopback(t)
	_, writer := l.Connect()
	mirrorConn, reader := l.Connect()
	kv := newBucket(t, writer, "restart")
	put(t, kv, key(1), value(limit{Max: 1}))
	rkv, err := reader.KeyValue(t.Context(), "restart")
	if err != nil {
		t.Fatal(err)
	}
	mi, err := bj.NewMirror[uint32, limit](t.Context(), rkv, m)
	if err != nil {
		t.Fatal(err)
	}
	synced(t, mi)

	l.Stop()
	l.Start()
	// The writer's connection comes back by itself; retry its first put.
	rev := putRetry(t, kv, key(2), value(limit{Max: 2}))
	if err := mi.WaitRevision(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	wantMap(t, m, map[uint32]limit{1: {Max: 1}, 2: {Max: 2}})

	// Cut the mirror's connection; change the bucket before it is back.
	id, err := mirrorConn.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Server().DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	put(t, kv, key(3), value(limit{Max: 3}))
	if err := kv.Delete(t.Context(), key(1)); err != nil {
		t.Fatal(err)
	}
	rev = put(t, kv, key(2), value(limit{Max: 22}))
	if err := mi.WaitRevision(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	wantMap(t, m, map[uint32]limit{2: {Max: 22}, 3: {Max: 3}})
	if err := mi.Close(); err != nil {
		t.Fatal(err)
	}
	st := mi.Stats()
	identity(t, "mirror", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
}

// putRetry puts until the server, just restarted, takes it.
func putRetry(t *testing.T, kv jetstream.KeyValue, k string, v []byte) uint64 {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		rev, err := kv.Put(ctx, k, v)
		cancel()
		if err == nil {
			return rev
		}
		if t.Context().Err() != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
}

// TestMirrorConstructionErrors: a map of another type, K or V of the
// wrong size, a bucket that no longer exists, a closed map.
func TestMirrorConstructionErrors(t *testing.T) {
	testenv.RequireBPF(t)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	kv := newBucket(t, j, "cfg")
	gone := newBucket(t, j, "gone")
	if err := j.DeleteKeyValue(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	hash := newHash(t, "cfg", 4, 8, 4)
	array, err := ebpf.NewMap(&ebpf.MapSpec{Name: "arr", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer array.Close()
	closed := newHash(t, "closed", 4, 8, 4)
	closed.Close()

	for _, tc := range []struct {
		name string
		new  func() error
		is   error
		says []string
	}{
		{"array map", func() error { return mirror[uint32, limit](t, kv, array) }, bj.ErrMapType, []string{`Array map "arr"`, `bucket "cfg"`}},
		{"value size", func() error { return mirror[uint32, uint32](t, kv, hash) }, bj.ErrSize, []string{"4 bytes", "8", `"cfg"`}},
		{"key size", func() error { return mirror[uint64, limit](t, kv, hash) }, bj.ErrSize, []string{"8 bytes", "4"}},
		{"deleted bucket", func() error { return mirror[uint32, limit](t, gone, hash) }, jetstream.ErrBucketNotFound, []string{`bucket "gone"`}},
		{"closed map", func() error { return mirror[uint32, limit](t, kv, closed) }, bj.ErrClosed, []string{`bucket "cfg"`}},
		{"nil map", func() error { return mirror[uint32, limit](t, kv, nil) }, bj.ErrNilMap, []string{`bucket "cfg"`, "nil map"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.new()
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want an error matching %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("got %q, want it to say %s", err, s)
				}
			}
		})
	}
}

func mirror[K, V any](t *testing.T, kv jetstream.KeyValue, m *ebpf.Map) error {
	mi, err := bj.NewMirror[K, V](t.Context(), kv, m)
	if err == nil {
		mi.Close()
	}
	return err
}

// TestMirrorSnapshotFullMap: a map near its capacity holds stale entries
// (keys deleted from the bucket while the agent was away, on a pinned
// map) that take the room of the bucket's keys. The snapshot's puts that
// find the map full are tried again once the stale entries are deleted,
// and only those that still do not fit are counted Dropped.
func TestMirrorSnapshotFullMap(t *testing.T) {
	for _, tc := range []struct {
		name        string
		bucket      uint32 // keys 1..bucket in the bucket
		wantEntries int
		wantDropped uint64
	}{
		{"room once the stale entries go", 2, 2, 0},
		{"still too many", 3, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newHash(t, "cap2", 4, 8, 2)
			for _, k := range []uint32{8, 9} { // what the last run left
				if err := m.Put(k, limit{Max: k}); err != nil {
					t.Fatal(err)
				}
			}
			s := natstest.Start(t)
			_, j := natstest.Connect(t, s)
			kv := newBucket(t, j, "cap2")
			for k := uint32(1); k <= tc.bucket; k++ {
				put(t, kv, key(k), value(limit{Max: k}))
			}
			mi, err := bj.NewMirror[uint32, limit](t.Context(), kv, m)
			if err != nil {
				t.Fatal(err)
			}
			synced(t, mi)
			got := contents(t, m)
			if len(got) != tc.wantEntries {
				t.Errorf("got map %v, want %d of the bucket's entries", got, tc.wantEntries)
			}
			for k, v := range got {
				if k < 1 || k > tc.bucket || v != (limit{Max: k}) {
					t.Errorf("got entry %d: %+v, which the bucket does not hold", k, v)
				}
			}
			if err := mi.Close(); err != nil {
				t.Fatal(err)
			}
			st := mi.Stats()
			if st.Dropped != tc.wantDropped || st.Deleted != 2 {
				t.Errorf("got stats %+v, want %d dropped, 2 deleted (the stale entries)", st, tc.wantDropped)
			}
			identity(t, "mirror", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
		})
	}
}
