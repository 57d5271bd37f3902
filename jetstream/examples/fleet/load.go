package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync/atomic"
	"time"
)

// loadCommands are the commands the demo's load runs in turn, those found
// in PATH; the blocked name (-block) is added when it is a command too.
var loadCommands = []string{"date", "uname", "id", "true"}

// load runs short commands at a steady rate, so that every node has system
// calls to trace: each command is a new process, whose pid falls in one
// node's share. The command is picked at random each time (in turn, the
// pids of one command could keep falling in the same share). Its goroutine is owned by the load: stop waits for it.
type load struct {
	cancel context.CancelFunc
	done   chan struct{}
	runs   atomic.Uint64 // commands run
	fails  atomic.Uint64 // commands that could not run or failed
}

// startLoad runs the commands, perSecond of them a second (a slow
// machine runs fewer: the ticker drops the ticks it misses), until stop.
func startLoad(ctx context.Context, perSecond int, block string) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, done: make(chan struct{})}
	var paths []string
	seen := map[string]bool{}
	for _, name := range append(loadCommands, block) {
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		if p, err := exec.LookPath(name); err == nil {
			paths = append(paths, p)
		}
	}
	if perSecond <= 0 || len(paths) == 0 {
		close(l.done)
		return l
	}
	go func() { // exits when ctx is done
		defer close(l.done)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			cmd := exec.CommandContext(ctx, paths[rand.IntN(len(paths))])
			if cmd.Run() != nil && ctx.Err() == nil {
				l.fails.Add(1)
			}
			l.runs.Add(1)
		}
	}()
	return l
}

// stop stops the load and waits until its last command has ended.
func (l *load) stop() {
	l.cancel()
	<-l.done
}

// A burst is dd copying burstBytes bytes one at a time: a read and a write
// per byte, 2*burstBytes system calls as fast as one process makes them,
// which fits in the default ring (48 bytes a record).
const burstBytes = 50_000

// burst starts bursts until one runs in the share of node index (of
// nodes), at most 3*nodes of them (the others land in other nodes' shares),
// and returns a function that waits until they have all ended. Without
// dd, it does nothing.
func burst(ctx context.Context, index, nodes int) (wait func()) {
	dd, err := exec.LookPath("dd")
	if err != nil {
		return func() {}
	}
	var cmds []*exec.Cmd
	for range 3 * nodes {
		cmd := exec.CommandContext(ctx, dd, "if=/dev/zero", "of=/dev/null", "bs=1", fmt.Sprintf("count=%d", burstBytes))
		if cmd.Start() != nil {
			break
		}
		cmds = append(cmds, cmd)
		if cmd.Process.Pid%nodes == index {
			break
		}
	}
	return func() {
		for _, cmd := range cmds {
			_ = cmd.Wait()
		}
	}
}
