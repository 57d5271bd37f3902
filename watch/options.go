package watch

import (
	"fmt"
	"reflect"
	"time"

	"github.com/bpfchan/bpfchan/internal/backoff"
)

// Default pauses between polls (see WithInterval).
const (
	// DefaultKeyInterval is the pause between polls of Key and Changes: one
	// lookup syscall (none for an mmapable array) per poll.
	DefaultKeyInterval = 10 * time.Millisecond
	// DefaultMapInterval is the pause between polls of Map: a sweep of the
	// whole map (one batch-lookup syscall per 1024 entries, none for an
	// mmapable array).
	DefaultMapInterval = 100 * time.Millisecond
)

// Option configures a watcher.
type Option func(*config)

type config struct {
	interval      time.Duration
	adaptive      bool
	minI, maxI    time.Duration
	equal         any // func(a, b V) bool
	initial       bool
	errs          []error
	intervalGiven bool
}

// WithInterval sets the pause between the end of one poll and the start of
// the next. d must be positive.
func WithInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithInterval(%v): interval must be positive: %w", d, ErrOption))
		}
		c.interval, c.intervalGiven = d, true
	}
}

// WithAdaptive makes the pause between polls follow the map: it starts at
// min, returns to min after every poll that found a change, and doubles after
// every poll that found none, up to max. A map that changes all the time is
// polled every min; a quiet one every max, reached after log2(max/min) quiet
// polls. It requires 0 < min <= max and excludes WithInterval.
func WithAdaptive(min, max time.Duration) Option {
	return func(c *config) {
		if min <= 0 || max < min {
			c.errs = append(c.errs, fmt.Errorf("WithAdaptive(%v, %v): want 0 < min <= max: %w", min, max, ErrOption))
		}
		c.adaptive, c.minI, c.maxI = true, min, max
	}
}

// WithEqual compares values with f instead of comparing their bytes: a new
// value for which f(last reported, new) is true is not a change, and the
// last reported value stays the reference for the next comparison. V must be
// the watcher's value type.
func WithEqual[V any](f func(a, b V) bool) Option {
	return func(c *config) {
		if f == nil {
			c.errs = append(c.errs, fmt.Errorf("WithEqual(nil): %w", ErrOption))
		}
		c.equal = f
	}
}

// WithInitial makes a watcher report the state it finds at construction
// first: Map reports every existing entry as Added; Changes reports the key's
// value (Present: true) or its absence (Present: false).
func WithInitial() Option {
	return func(c *config) { c.initial = true }
}

func newConfig(interval time.Duration, opts []Option) (config, error) {
	c := config{interval: interval}
	for _, o := range opts {
		o(&c)
	}
	if c.adaptive && c.intervalGiven {
		c.errs = append(c.errs, fmt.Errorf("WithInterval and WithAdaptive both given: %w", ErrOption))
	}
	return c, oneLine(c.errs)
}

// oneLine joins errs into one error of one line (errors.Join would put each
// on its own); errors.Is matches each of them.
func oneLine(errs []error) error {
	var err error
	for _, e := range errs {
		if err == nil {
			err = e
		} else {
			err = fmt.Errorf("%w; %w", err, e)
		}
	}
	return err
}

// equalFunc returns the WithEqual function for V, or an error when the
// option was given for another type.
func equalFunc[V any](c config) (func(a, b V) bool, error) {
	if c.equal == nil {
		return nil, nil
	}
	f, ok := c.equal.(func(a, b V) bool)
	if !ok {
		return nil, fmt.Errorf("WithEqual: %s does not compare the value type %s: %w",
			reflect.TypeOf(c.equal), reflect.TypeFor[V](), ErrOption)
	}
	return f, nil
}

// pauses returns the pauses between polls: always the interval, or, with
// WithAdaptive, an exponential backoff from min to max that the poller
// resets after a poll that found changes.
func (c config) pauses() backoff.Backoff {
	if c.adaptive {
		return backoff.Backoff{Min: c.minI, Max: c.maxI}
	}
	return backoff.Backoff{Min: c.interval, Max: c.interval}
}
