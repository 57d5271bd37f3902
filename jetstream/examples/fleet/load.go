package main

import (
	"context"
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
