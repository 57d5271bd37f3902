package jetstream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestCheckLate: before messages are sent again, those first sent (or
// last found missing) at least stale ago are looked for in the stream;
// the ones it holds become found events instead of resends, the missing
// ones are sent with their clock restarted, and when the look fails the
// late ones wait for the retry timer, unsent. An explicit clock stands for
// time.
func TestCheckLate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		ages      []time.Duration // of each message due
		held      map[int]bool    // what the stream holds, by index
		lookErr   error
		wantLook  []int // the indexes looked for
		wantSend  []int
		wantFound []int
		wantRetry []int
	}{
		{"none late", []time.Duration{0, time.Minute}, nil, nil, nil, []int{0, 1}, nil, nil},
		{"late, some held", []time.Duration{time.Minute, 3 * time.Minute, 5 * time.Minute}, map[int]bool{2: true}, nil,
			[]int{1, 2}, []int{0, 1}, []int{2}, nil},
		{"the look fails", []time.Duration{time.Minute, 3 * time.Minute}, nil, errors.New("no responders"),
			[]int{1}, []int{0}, nil, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(time.Hour)
			o := &outbox{
				stale:   2 * time.Minute,
				now:     func() time.Time { return now },
				notify:  make(chan struct{}, 1),
				backoff: backoff{min: time.Hour, max: time.Hour},
			}
			t.Cleanup(func() {
				if o.timer != nil {
					o.timer.Stop()
				}
			})
			var due []*entry
			index := make(map[*entry]int)
			for i, age := range tc.ages {
				e := &entry{msg: &nats.Msg{}, n: 1, sent: now.Add(-age)}
				due = append(due, e)
				index[e] = i
			}
			var looked []int
			o.recheck = func(_ context.Context, late []*entry) ([]bool, error) {
				held := make([]bool, len(late))
				for i, e := range late {
					looked = append(looked, index[e])
					held[i] = tc.held[index[e]]
				}
				return held, tc.lookErr
			}
			send, err := o.checkLate(t.Context(), due)
			if err != nil {
				t.Fatal(err)
			}
			indexes := func(es []*entry) []int {
				var out []int
				for _, e := range es {
					out = append(out, index[e])
				}
				return out
			}
			var found []int
			for _, ev := range o.events {
				for e, i := range index {
					if ev.found && ev.msg == e.msg {
						found = append(found, i)
					}
				}
			}
			got := fmt.Sprint(looked, indexes(send), found, indexes(o.retry))
			if want := fmt.Sprint(tc.wantLook, tc.wantSend, tc.wantFound, tc.wantRetry); got != want {
				t.Errorf("got looked, sent, found, waiting %s; want %s", got, want)
			}
			for _, e := range send {
				if age := now.Sub(e.sent); tc.ages[index[e]] >= o.stale && age != 0 {
					t.Errorf("message %d: sent after the look with its clock at %v, want restarted", index[e], age)
				}
			}
		})
	}
}
