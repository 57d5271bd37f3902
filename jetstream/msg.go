package jetstream

import (
	"context"
	"sync/atomic"

	js "github.com/nats-io/nats.go/jetstream"
)

// Msg is one record a Consumer delivers, with where it came from.
type Msg[T any] struct {
	Value   T
	Subject string // the message's subject
	Node    string // its HeaderNode, "" when absent
	Ring    string // its HeaderRing, "" when absent
	// Pos is the message's HeaderPos (0 when absent): the record's position
	// in its ring, or in a packed message its first record's position for
	// every record of it; Index then tells the records apart.
	Pos   uint64
	Index int    // the record's place in a packed message, from 0; 0 otherwise
	Seq   uint64 // the message's stream sequence
	// Delivered is the server's delivery count of the message: 1 the first
	// time, more when it was not acknowledged in time and came again.
	Delivered uint64

	acked atomic.Bool
	state *ackState
}

// ackState is what the records of one message share: the message is
// acknowledged on the server once every one of its delivered records is.
type ackState struct {
	m     js.Msg
	left  atomic.Int32 // records not yet acknowledged
	naked atomic.Bool
	cnt   *counters
}

// Ack acknowledges the record. The message is acknowledged on the server
// when its last record is (a message that is not packed holds one); until
// then, and if that acknowledgement is lost, the server delivers the whole
// message again after the consumer's AckWait: delivery is at least once.
// A second Ack of the same record returns jetstream.ErrMsgAlreadyAckd.
func (m *Msg[T]) Ack() error {
	last, err := m.take()
	if err != nil || !last {
		return err
	}
	return m.state.m.Ack()
}

// AckSync is Ack that, for the message's last record, waits until the
// server confirms the acknowledgement (a double ack), so a nil error means
// the server will not deliver the message again.
func (m *Msg[T]) AckSync(ctx context.Context) error {
	last, err := m.take()
	if err != nil || !last {
		return err
	}
	return m.state.m.DoubleAck(ctx)
}

// Nak asks the server to deliver the record's message again now, rather
// than after the consumer's AckWait; in a packed message every record of it
// comes again. It returns nil when the message was already negatively
// acknowledged.
func (m *Msg[T]) Nak() error {
	if m.state.naked.Swap(true) {
		return nil
	}
	return m.state.m.Nak()
}

// take marks the record acknowledged and reports whether it was the last
// of its message.
func (m *Msg[T]) take() (last bool, err error) {
	if m.acked.Swap(true) {
		return false, js.ErrMsgAlreadyAckd
	}
	m.state.cnt.acked.Add(1)
	return m.state.left.Add(-1) == 0, nil
}
