package jetstream_test

// Review of issue 19 (Mirror). Each test here either fails on the code it
// was written against, showing a defect, or passes and documents a hazard
// that was checked.

import (
	"testing"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// TestReviewMirrorSnapshotFullMap: the snapshot puts every key of the
// bucket first and deletes the stale entries only at its end (synced). A
// map near its capacity whose stale entries (keys deleted from the bucket
// while the agent was away, on a pinned map) take the room of the
// bucket's new keys drops those puts as "full", then deletes the stale
// entries: the map ends with room to spare and without keys the bucket has,
// and stays so until each key is put again. The map is not "equal to the
// bucket" after Synced. The snapshot's dropped puts could be put again once
// the stale entries are deleted (or the stale entries deleted first).
func TestReviewMirrorSnapshotFullMap(t *testing.T) {
	m := newHash(t, "cap2", 4, 8, 2)
	for k, v := range map[uint32]limit{8: {Max: 8}, 9: {Max: 9}} { // what the last run left
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	kv := newBucket(t, j, "cap2")
	put(t, kv, key(1), value(limit{Max: 1}))
	put(t, kv, key(2), value(limit{Max: 2}))
	mi, err := bj.NewMirror[uint32, limit](t.Context(), kv, m)
	if err != nil {
		t.Fatal(err)
	}
	synced(t, mi)
	wantMap(t, m, map[uint32]limit{1: {Max: 1}, 2: {Max: 2}})
	if err := mi.Close(); err != nil {
		t.Fatal(err)
	}
	if st := mi.Stats(); st.Dropped != 0 {
		t.Errorf("got stats %+v, want nothing dropped: the map has room for the bucket", st)
	}
}
