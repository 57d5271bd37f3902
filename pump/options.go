package pump

import (
	"fmt"
	"strconv"
	"time"

	"github.com/bpfchan/bpfchan/chans"
)

// Option configures a pump. Options that make no sense for a constructor
// (a batch size for a queue poller) are an error there, not ignored.
type Option func(*config)

// FullPolicy is what a writer does when its map (a queue, a stack, a user
// ring buffer) is full.
type FullPolicy uint8

const (
	// FullBlock waits until a consumer makes room (default), counting each
	// retry in Stats.FullRetries: a queue or stack writer retries with the
	// WithPoll backoff (a pop by this package's pumps retries at once); a
	// user ring buffer writer waits for the BPF program's drain.
	FullBlock FullPolicy = iota
	// FullDrop drops the value, counted in Stats.Dropped.
	FullDrop
	// FullOverwrite evicts the oldest value (BPF_EXIST), counted in
	// Stats.Overwritten. Queues and stacks only.
	FullOverwrite
	// FullFail stops the writer; Wait returns an error matching maps.ErrFull.
	FullFail
)

func (f FullPolicy) String() string {
	switch f {
	case FullBlock:
		return "block"
	case FullDrop:
		return "drop"
	case FullOverwrite:
		return "overwrite"
	case FullFail:
		return "fail"
	}
	return "full-policy(" + strconv.Itoa(int(f)) + ")"
}

// Defaults. The poll backoff keeps an idle queue poller well under 0.5% of
// a core (see "Idle cost at scale" in the repository's PERFORMANCE.md).
const (
	DefaultBatchSize     = 256
	DefaultBatchAge      = time.Millisecond
	DefaultPollMin       = 50 * time.Microsecond
	DefaultPollMax       = 100 * time.Millisecond
	DefaultDrainInterval = 100 * time.Millisecond
	DefaultPerfBuffer    = 64 << 10
)

// config is what the options set; its zero value means "defaults".
type config struct {
	buffer    int
	overflow  chans.Policy
	batchSize int
	batchAge  time.Duration
	pollMin   time.Duration
	pollMax   time.Duration
	full      FullPolicy
	decoder   any // func([]byte) (T, error)
	encoder   any // func(T) ([]byte, error)
	perfBytes int
	wakeup    int
	drain     time.Duration

	set  map[string]bool // options given, to reject those a pump ignores
	errs []error
}

func (c *config) mark(name string) {
	if c.set == nil {
		c.set = make(map[string]bool)
	}
	c.set[name] = true
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithBuffer sets the capacity of C(); the default is 0 (unbuffered).
func WithBuffer(n int) Option {
	return func(c *config) {
		c.mark("WithBuffer")
		if n < 0 {
			c.fail("WithBuffer(%d): negative capacity", n)
		}
		c.buffer = n
	}
}

// WithOverflow sets what a source does when its consumer is slower than the
// kernel: chans.Block (default) waits, chans.DropNewest and chans.DropOldest
// drop, counted in Stats.Dropped. DropOldest evicts from C()'s buffer, so it
// needs WithBuffer(n > 0).
func WithOverflow(p chans.Policy) Option {
	return func(c *config) {
		c.mark("WithOverflow")
		if p > chans.DropOldest {
			c.fail("WithOverflow(%v): unknown policy", p)
		}
		c.overflow = p
	}
}

// WithBatch sets the batch size of RingBufBatches and RingBufAcked, and the
// age at which a partial batch is sent anyway; defaults 256 and 1 ms. A
// maxAge of 0 means no age flush (as pipeline.Batch): a batch is sent when
// full, or as soon as the ring is empty, so a lone record is not held back
// either way.
func WithBatch(size int, maxAge time.Duration) Option {
	return func(c *config) {
		c.mark("WithBatch")
		if size < 1 || maxAge < 0 {
			c.fail("WithBatch(%d, %v): want size >= 1 and maxAge >= 0 (0: no age flush)", size, maxAge)
		}
		c.batchSize, c.batchAge = size, maxAge
	}
}

// WithPoll sets a queue or stack poller's backoff when the map is empty:
// from min, doubling to max. Defaults DefaultPollMin and DefaultPollMax.
func WithPoll(min, max time.Duration) Option {
	return func(c *config) {
		c.mark("WithPoll")
		if min <= 0 || max < min {
			c.fail("WithPoll(%v, %v): want 0 < min <= max", min, max)
		}
		c.pollMin, c.pollMax = min, max
	}
}

// WithFull sets what a writer does when its map is full; default FullBlock.
func WithFull(f FullPolicy) Option {
	return func(c *config) {
		c.mark("WithFull")
		if f > FullFail {
			c.fail("WithFull(%v): unknown policy", f)
		}
		c.full = f
	}
}

// WithDecoder replaces the built-in decoding of records into T. A record the
// decoder rejects is counted in Stats.DecodeErrors; a decoder that panics
// stops the pump with an error carrying the panic value. T must be the
// pump's element type. The decoder may modify the bytes it is given, but
// they are valid only during the call: the pump reuses them for the next
// record, so a decoder that keeps them (or part of them) copies them.
func WithDecoder[T any](f func([]byte) (T, error)) Option {
	return func(c *config) {
		c.mark("WithDecoder")
		if f == nil {
			c.fail("WithDecoder: nil func")
		}
		c.decoder = f
	}
}

// WithEncoder replaces the built-in encoding of a writer's values. A value
// that fails to encode, or encodes to the wrong size, is skipped and counted
// in Stats.DecodeErrors. T must be the pump's element type.
func WithEncoder[T any](f func(T) ([]byte, error)) Option {
	return func(c *config) {
		c.mark("WithEncoder")
		if f == nil {
			c.fail("WithEncoder: nil func")
		}
		c.encoder = f
	}
}

// WithPerfBuffer sets Perf's per-CPU buffer size in bytes, rounded up to
// whole pages by the kernel; default DefaultPerfBuffer.
func WithPerfBuffer(perCPUBytes int) Option {
	return func(c *config) {
		c.mark("WithPerfBuffer")
		if perCPUBytes < 1 {
			c.fail("WithPerfBuffer(%d): want > 0", perCPUBytes)
		}
		c.perfBytes = perCPUBytes
	}
}

// WithWakeupEvents makes the kernel wake a Perf reader only after n samples
// in one per-CPU buffer (fewer wake-ups, more latency). Samples below the
// threshold are still delivered by the periodic drain (WithDrainInterval).
func WithWakeupEvents(n int) Option {
	return func(c *config) {
		c.mark("WithWakeupEvents")
		if n < 1 {
			c.fail("WithWakeupEvents(%d): want >= 1", n)
		}
		c.wakeup = n
	}
}

// WithDrainInterval sets how often a ring-buffer or perf pump looks for
// records the kernel did not announce (BPF_RB_NO_WAKEUP, perf wakeup
// thresholds), and a user ring buffer writer waiting on a full ring looks
// for room a drain did not announce; default DefaultDrainInterval.
func WithDrainInterval(d time.Duration) Option {
	return func(c *config) {
		c.mark("WithDrainInterval")
		if d <= 0 {
			c.fail("WithDrainInterval(%v): want > 0", d)
		}
		c.drain = d
	}
}

// newConfig applies opts and rejects those the constructor (what) does not
// accept.
func newConfig(what string, accepted []string, opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%s: nil option: %w", what, ErrOption)
		}
		o(&c)
	}
	for _, e := range c.errs {
		return c, fmt.Errorf("%s: %w: %w", what, ErrOption, e)
	}
	for name := range c.set {
		if !contains(accepted, name) {
			return c, fmt.Errorf("%s does not take %s: %w", what, name, ErrOption)
		}
	}
	if c.overflow == chans.DropOldest && c.buffer == 0 {
		// An unbuffered C() holds nothing to evict: it would act as
		// DropNewest.
		return c, fmt.Errorf("%s: WithOverflow(%v) needs WithBuffer(n > 0): %w", what, c.overflow, ErrOption)
	}
	if c.batchSize == 0 {
		c.batchSize, c.batchAge = DefaultBatchSize, DefaultBatchAge
	}
	if c.pollMin == 0 {
		c.pollMin, c.pollMax = DefaultPollMin, DefaultPollMax
	}
	if c.perfBytes == 0 {
		c.perfBytes = DefaultPerfBuffer
	}
	if c.drain == 0 {
		c.drain = DefaultDrainInterval
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The options each kind of pump accepts.
var (
	sourceOpts   = []string{"WithBuffer", "WithOverflow", "WithDecoder"}
	ringOpts     = append(sourceOpts[:len(sourceOpts):len(sourceOpts)], "WithDrainInterval")
	batchOpts    = append(ringOpts[:len(ringOpts):len(ringOpts)], "WithBatch")
	perfOpts     = append(ringOpts[:len(ringOpts):len(ringOpts)], "WithPerfBuffer", "WithWakeupEvents")
	ackedOpts    = batchOpts
	userRingOpts = []string{"WithBuffer", "WithFull", "WithEncoder", "WithDrainInterval"}
	pollOpts     = append(sourceOpts[:len(sourceOpts):len(sourceOpts)], "WithPoll")
	sinkOpts     = []string{"WithBuffer", "WithFull", "WithEncoder", "WithDecoder", "WithPoll"}
	duplexOpts   = []string{"WithBuffer", "WithOverflow", "WithDecoder", "WithFull", "WithEncoder", "WithPoll"}
)
