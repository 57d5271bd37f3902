package jetstream

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Option configures a handle of this package. An option a constructor
// does not take is refused with an error matching ErrOption, never ignored.
type Option func(*config)

// Defaults of the publishing options.
const (
	DefaultMaxPending = 1024                   // unacknowledged publishes a Publisher keeps in flight
	DefaultAckWait    = 5 * time.Second        // an unanswered publish is sent again after this
	DefaultRetryMin   = 100 * time.Millisecond // the first pause before a failed publish is sent again
	DefaultRetryMax   = 5 * time.Second        // the longest pause between two attempts
)

// config is what the options set; its zero value means "defaults".
type config struct {
	node       string
	maxPending int
	ackWait    time.Duration
	retryMin   time.Duration
	retryMax   time.Duration
	buffer     int
	packed     bool
	encoder    any // func(T) ([]byte, error)
	decoder    any // func([]byte) (T, error)
	keyDec     any // func(string) (K, error)
	valueDec   any // func([]byte) (V, error)

	set  []string // the options given, to refuse those a constructor does not take
	errs []error
}

func (c *config) mark(name string) { c.set = append(c.set, name) }

func (c *config) fail(name, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// newConfig applies opts for the constructor what, which takes the options
// named in allowed, and fills in the defaults.
func newConfig(what string, allowed []string, opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, errors.New("nil Option"))
			continue
		}
		o(&c)
	}
	for _, name := range c.set {
		if !slices.Contains(allowed, name) {
			c.errs = append(c.errs, fmt.Errorf("%s does not take %s", what, name))
		}
	}
	if len(c.errs) > 0 {
		msgs := make([]string, len(c.errs))
		for i, err := range c.errs {
			msgs[i] = err.Error()
		}
		// One line, whatever the number of faults.
		return c, fmt.Errorf("%s: %s: %w", what, strings.Join(msgs, "; "), ErrOption)
	}
	if c.node == "" {
		c.node = defaultNode()
	}
	if c.maxPending == 0 {
		c.maxPending = DefaultMaxPending
	}
	if c.ackWait == 0 {
		c.ackWait = DefaultAckWait
	}
	if c.retryMin == 0 {
		c.retryMin, c.retryMax = DefaultRetryMin, DefaultRetryMax
	}
	return c, nil
}

// defaultNode is the host name, or "unknown" when the kernel will not say.
func defaultNode() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

// WithNode names the node in the HeaderNode header of every message
// (default: the host name); a Forwarder's message IDs start with it.
// Publisher, Forward.
func WithNode(name string) Option {
	return func(c *config) {
		c.mark("WithNode")
		if name == "" || strings.ContainsAny(name, "\r\n") {
			c.fail("WithNode", "node name %q is empty or holds a line break", name)
		}
		c.node = name
	}
}

// WithMaxPending bounds the publishes in flight, sent and not yet
// acknowledged (default DefaultMaxPending): at the bound the Publisher
// stops taking values from C() until an acknowledgement arrives. A
// Forwarder counts its messages from the oldest one not yet acknowledged,
// acknowledged or not: at the bound it publishes no more until that one
// is. Publisher, Forward.
func WithMaxPending(n int) Option {
	return func(c *config) {
		c.mark("WithMaxPending")
		if n < 1 {
			c.fail("WithMaxPending", "%d, want at least 1", n)
		}
		c.maxPending = n
	}
}

// WithAckWait is how long a publish may go unanswered before it is sent
// again with the same message ID (default DefaultAckWait). Publisher,
// Forward.
func WithAckWait(d time.Duration) Option {
	return func(c *config) {
		c.mark("WithAckWait")
		if d <= 0 {
			c.fail("WithAckWait", "%v, want more than 0", d)
		}
		c.ackWait = d
	}
}

// WithRetry sets the pauses before a failed publish is sent again: min
// after the first failure, doubling up to max while failures go on, back to
// min once an acknowledgement arrives (defaults DefaultRetryMin and
// DefaultRetryMax). Publisher, Forward.
func WithRetry(min, max time.Duration) Option {
	return func(c *config) {
		c.mark("WithRetry")
		if min <= 0 || max < min {
			c.fail("WithRetry", "min %v, max %v: want 0 < min <= max", min, max)
		}
		c.retryMin, c.retryMax = min, max
	}
}

// WithBuffer sets the capacity of C() (default 0). Publisher, Consumer.
func WithBuffer(n int) Option {
	return func(c *config) {
		c.mark("WithBuffer")
		if n < 0 {
			c.fail("WithBuffer", "%d, want 0 or more", n)
		}
		c.buffer = n
	}
}

// WithEncoder makes a Publisher or Forwarder encode each value with f
// instead of T's binary encoding. A value f fails to encode is counted in
// Stats.DecodeErrors and skipped (a Forwarder releases its record with the
// others); a panic of f stops the handle with an error matching ErrPanic.
// Publisher, Forward.
func WithEncoder[T any](f func(T) ([]byte, error)) Option {
	return func(c *config) {
		c.mark("WithEncoder")
		if f == nil {
			c.fail("WithEncoder", "nil function")
		}
		c.encoder = f
	}
}

// WithPacked makes a Forwarder pack each batch the ring delivers (see
// pump.WithBatch) into one message, cut where it would exceed the
// connection's maximum payload or the stream's MaxMsgSize (headers
// included): HeaderCount records, each prefixed by its length as a
// little-endian uint32, which a Consumer unpacks. Forward.
func WithPacked() Option {
	return func(c *config) {
		c.mark("WithPacked")
		c.packed = true
	}
}

// WithDecoder makes a Consumer decode each record with f instead of T's
// binary encoding. A record f fails to decode, or panics on, is counted in
// Stats.DecodeErrors. Consumer.
func WithDecoder[T any](f func([]byte) (T, error)) Option {
	return func(c *config) {
		c.mark("WithDecoder")
		if f == nil {
			c.fail("WithDecoder", "nil function")
		}
		c.decoder = f
	}
}

// WithKeyDecoder makes a Mirror read the bucket's keys with f instead of
// base64url (no padding) of K's binary encoding: plain names put with the
// nats CLI, say. A key f refuses, or panics on, is counted in
// Stats.DecodeErrors. Mirror.
func WithKeyDecoder[K any](f func(string) (K, error)) Option {
	return func(c *config) {
		c.mark("WithKeyDecoder")
		if f == nil {
			c.fail("WithKeyDecoder", "nil function")
		}
		c.keyDec = f
	}
}

// WithValueDecoder makes a Mirror read the bucket's values with f instead
// of V's binary encoding. A value f refuses, or panics on, is counted in
// Stats.DecodeErrors and its key treated as absent. Mirror.
func WithValueDecoder[V any](f func([]byte) (V, error)) Option {
	return func(c *config) {
		c.mark("WithValueDecoder")
		if f == nil {
			c.fail("WithValueDecoder", "nil function")
		}
		c.valueDec = f
	}
}

// userFunc returns the function an option stored in f as a W, or an error
// naming both types when the option was given for another type.
func userFunc[W any](what, option string, f any) (W, error) {
	w, ok := f.(W)
	if !ok {
		var zero W
		return zero, fmt.Errorf("%s: %s takes a %v, got a %v: %w", what, option, reflect.TypeFor[W](), reflect.TypeOf(f), ErrOption)
	}
	return w, nil
}
