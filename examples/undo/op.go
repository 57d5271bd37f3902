package main

import (
	"errors"
	"fmt"
	"time"
)

// The kinds of edit, numbered as in the lab.
const (
	OpInsert  uint32 = 1
	OpDelete  uint32 = 2
	OpReplace uint32 = 3
)

// maxText is the longest text an Op carries, in bytes.
const maxText = 116

// Op is one edit as it sits in a BPF stack map: 256 bytes, the lab's value
// size, laid out without padding so that it is copied as raw memory.
type Op struct {
	Type      uint32 // OpInsert, OpDelete or OpReplace
	Pos       uint32 // byte offset in the document
	Timestamp int64  // Unix milliseconds when the edit was made
	TextLen   uint32
	OldLen    uint32
	Text      [maxText]byte // inserted, deleted or replacing text
	Old       [maxText]byte // the replaced text (OpReplace)
}

var errTooLong = errors.New("text too long")

// newOp builds an Op; a text longer than maxText bytes is an error.
func newOp(typ, pos uint32, text, old string, now time.Time) (Op, error) {
	if len(text) > maxText || len(old) > maxText {
		return Op{}, fmt.Errorf("edit at %d: %w (at most %d bytes)", pos, errTooLong, maxText)
	}
	op := Op{Type: typ, Pos: pos, Timestamp: now.UnixMilli(), TextLen: uint32(len(text)), OldLen: uint32(len(old))}
	copy(op.Text[:], text)
	copy(op.Old[:], old)
	return op, nil
}

func (op Op) text() string { return string(op.Text[:min(op.TextLen, maxText)]) }
func (op Op) old() string  { return string(op.Old[:min(op.OldLen, maxText)]) }

// String prints an Op as the lab does: INSERT at 5: ' World'.
func (op Op) String() string {
	return fmt.Sprintf("%s at %d: '%s'", opName(op.Type), op.Pos, op.text())
}

func opName(t uint32) string {
	switch t {
	case OpInsert:
		return "INSERT"
	case OpDelete:
		return "DELETE"
	case OpReplace:
		return "REPLACE"
	}
	return "?"
}

// reverse returns the edit that undoes op.
func (op Op) reverse() Op {
	r := op
	switch op.Type {
	case OpInsert:
		r.Type = OpDelete
	case OpDelete:
		r.Type = OpInsert
	case OpReplace:
		r.Text, r.Old = op.Old, op.Text
		r.TextLen, r.OldLen = op.OldLen, op.TextLen
	}
	return r
}

// applyTo returns doc with op applied. Positions beyond the end are clamped,
// as the lab's safe-subs does.
func (op Op) applyTo(doc string) string {
	at := clamp(int(op.Pos), len(doc))
	switch op.Type {
	case OpInsert:
		return doc[:at] + op.text() + doc[at:]
	case OpDelete:
		return doc[:at] + doc[clamp(at+int(op.TextLen), len(doc)):]
	case OpReplace:
		return doc[:at] + op.text() + doc[clamp(at+int(op.OldLen), len(doc)):]
	}
	return doc
}

func clamp(i, n int) int { return max(0, min(i, n)) }
