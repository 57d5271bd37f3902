package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// maxDoc is the longest document the document map holds, in bytes.
const maxDoc = 1020

// Doc is the document as it sits in the BPF hash map: 1024 bytes, the lab's
// value size.
type Doc struct {
	Len  uint32
	Text [maxDoc]byte
}

// Manager is the lab's undo manager: two BPF stack maps (undo and redo) of
// Ops and a BPF hash map holding the document, all real kernel maps. It is
// used from one goroutine at a time.
type Manager struct {
	undo, redo *bpfmaps.Stack[Op]
	docs       *bpfmaps.Map[uint32, Doc]
	doc        *bpfmaps.Entry[uint32, Doc]
	depth      int
	nUndo      int           // values in the undo stack (the kernel does not say)
	nRedo      int           // values in the redo stack
	wait       time.Duration // how long Undo and Redo wait for a value (the lab's deref timeout)
	out        io.Writer
	now        func() time.Time
}

// NewManager creates the three maps: stacks of depth operations each, and the
// document map holding the empty document. Undo and Redo wait up to wait for
// an operation before saying there is nothing to undo (0: they do not wait).
func NewManager(depth int, wait time.Duration, out io.Writer) (*Manager, error) {
	m := &Manager{depth: depth, wait: wait, out: out, now: time.Now}
	var err error
	if m.undo, err = bpfmaps.NewStack[Op](uint32(depth)); err != nil {
		return nil, fmt.Errorf("create the undo stack: %w", err)
	}
	if m.redo, err = bpfmaps.NewStack[Op](uint32(depth)); err != nil {
		m.Close()
		return nil, fmt.Errorf("create the redo stack: %w", err)
	}
	if m.docs, err = bpfmaps.NewHash[uint32, Doc](1); err != nil {
		m.Close()
		return nil, fmt.Errorf("create the document map: %w", err)
	}
	m.doc = m.docs.Entry(0)
	if err := m.doc.Store(Doc{}); err != nil {
		m.Close()
		return nil, fmt.Errorf("store the empty document: %w", err)
	}
	return m, nil
}

// Close closes the maps.
func (m *Manager) Close() error {
	var errs []error
	if m.undo != nil {
		errs = append(errs, m.undo.Close())
	}
	if m.redo != nil {
		errs = append(errs, m.redo.Close())
	}
	if m.docs != nil {
		errs = append(errs, m.docs.Close())
	}
	return errors.Join(errs...)
}

// Document returns the document, read from its map.
func (m *Manager) Document() (string, error) {
	d, err := m.doc.Load()
	if err != nil {
		return "", fmt.Errorf("load the document: %w", err)
	}
	return string(d.Text[:min(d.Len, maxDoc)]), nil
}

// apply applies op to the document in its map.
func (m *Manager) apply(op Op) error {
	doc, err := m.Document()
	if err != nil {
		return err
	}
	doc = op.applyTo(doc)
	if len(doc) > maxDoc {
		return fmt.Errorf("%v: the document would be %d bytes, the map holds %d", op, len(doc), maxDoc)
	}
	d := Doc{Len: uint32(len(doc))}
	copy(d.Text[:], doc)
	if err := m.doc.Store(d); err != nil {
		return fmt.Errorf("store the document: %w", err)
	}
	return nil
}

// push puts op on top of st. A full stack forgets its oldest operation
// (BPF_EXIST), as the lab's bounded history does.
func (m *Manager) push(st *bpfmaps.Stack[Op], n *int, op Op) error {
	if err := st.PushOverwrite(op); err != nil {
		return err
	}
	*n = min(*n+1, m.depth)
	return nil
}

// pop takes the top of st, waiting up to m.wait for one; ok is false when
// there is none.
func (m *Manager) pop(ctx context.Context, st *bpfmaps.Stack[Op], n *int) (op Op, ok bool, err error) {
	if m.wait <= 0 {
		op, err = st.Pop()
	} else {
		wctx, cancel := context.WithTimeout(ctx, m.wait)
		op, err = st.PopWait(wctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = bpfmaps.ErrEmpty
		}
	}
	switch {
	case errors.Is(err, bpfmaps.ErrEmpty):
		return Op{}, false, nil
	case err != nil:
		return Op{}, false, err
	}
	*n = max(*n-1, 0)
	return op, true, nil
}

// clearRedo empties the redo stack: a new edit invalidates redo history.
func (m *Manager) clearRedo() error {
	for {
		_, err := m.redo.Pop()
		if errors.Is(err, bpfmaps.ErrEmpty) {
			m.nRedo = 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("clear the redo stack: %w", err)
		}
	}
}

func (m *Manager) printDoc() error {
	doc, err := m.Document()
	if err != nil {
		return err
	}
	fmt.Fprintf(m.out, "Document: %q\n", doc)
	return nil
}

// Execute applies op, pushes it on the undo stack and clears the redo stack.
func (m *Manager) Execute(op Op) error {
	fmt.Fprintf(m.out, "Executing: %v\n", op)
	if err := m.apply(op); err != nil {
		return err
	}
	if err := m.push(m.undo, &m.nUndo, op); err != nil {
		return fmt.Errorf("push on the undo stack: %w", err)
	}
	if err := m.clearRedo(); err != nil {
		return err
	}
	return m.printDoc()
}

// Insert inserts text at pos.
func (m *Manager) Insert(pos int, text string) error {
	op, err := newOp(OpInsert, uint32(pos), text, "", m.now())
	if err != nil {
		return err
	}
	return m.Execute(op)
}

// Delete deletes n bytes at pos.
func (m *Manager) Delete(pos, n int) error {
	doc, err := m.Document()
	if err != nil {
		return err
	}
	op, err := newOp(OpDelete, uint32(pos), doc[clamp(pos, len(doc)):clamp(pos+n, len(doc))], "", m.now())
	if err != nil {
		return err
	}
	return m.Execute(op)
}

// Replace replaces old, found at pos, with text.
func (m *Manager) Replace(pos int, old, text string) error {
	op, err := newOp(OpReplace, uint32(pos), text, old, m.now())
	if err != nil {
		return err
	}
	return m.Execute(op)
}

// Undo pops the last operation, applies its reverse and pushes it on the
// redo stack. It reports false when there was nothing to undo.
func (m *Manager) Undo(ctx context.Context) (bool, error) {
	op, ok, err := m.pop(ctx, m.undo, &m.nUndo)
	if err != nil {
		return false, fmt.Errorf("pop the undo stack: %w", err)
	}
	if !ok {
		fmt.Fprintln(m.out, "Nothing to undo")
		return false, nil
	}
	fmt.Fprintf(m.out, "Undoing: %v\n", op)
	if err := m.apply(op.reverse()); err != nil {
		return false, err
	}
	if err := m.push(m.redo, &m.nRedo, op); err != nil {
		return false, fmt.Errorf("push on the redo stack: %w", err)
	}
	return true, m.printDoc()
}

// Redo pops the last undone operation, applies it again and pushes it back
// on the undo stack. It reports false when there was nothing to redo.
func (m *Manager) Redo(ctx context.Context) (bool, error) {
	op, ok, err := m.pop(ctx, m.redo, &m.nRedo)
	if err != nil {
		return false, fmt.Errorf("pop the redo stack: %w", err)
	}
	if !ok {
		fmt.Fprintln(m.out, "Nothing to redo")
		return false, nil
	}
	fmt.Fprintf(m.out, "Redoing: %v\n", op)
	if err := m.apply(op); err != nil {
		return false, err
	}
	if err := m.push(m.undo, &m.nUndo, op); err != nil {
		return false, fmt.Errorf("push on the undo stack: %w", err)
	}
	return true, m.printDoc()
}

// UndoN undoes up to n operations and returns how many it undid (the lab's
// exercise 1).
func (m *Manager) UndoN(ctx context.Context, n int) (int, error) {
	fmt.Fprintf(m.out, "Undoing %d operations...\n", n)
	done := 0
	for done < n {
		ok, err := m.Undo(ctx)
		if err != nil || !ok {
			return done, err
		}
		done++
	}
	fmt.Fprintf(m.out, "Undid %d operations\n", done)
	return done, nil
}

// RedoN redoes up to n operations and returns how many it redid.
func (m *Manager) RedoN(ctx context.Context, n int) (int, error) {
	fmt.Fprintf(m.out, "Redoing %d operations...\n", n)
	done := 0
	for done < n {
		ok, err := m.Redo(ctx)
		if err != nil || !ok {
			return done, err
		}
		done++
	}
	fmt.Fprintf(m.out, "Redid %d operations\n", done)
	return done, nil
}

// PeekUndo returns the next operation to undo without removing it (the
// lab's peek-undo); ok is false when there is none.
func (m *Manager) PeekUndo() (op Op, ok bool, err error) { return peek(m.undo) }

// PeekRedo returns the next operation to redo without removing it.
func (m *Manager) PeekRedo() (op Op, ok bool, err error) { return peek(m.redo) }

func peek(st *bpfmaps.Stack[Op]) (Op, bool, error) {
	op, err := st.Peek()
	if errors.Is(err, bpfmaps.ErrEmpty) {
		return Op{}, false, nil
	}
	return op, err == nil, err
}

// Status prints the document and the depth of both stacks.
func (m *Manager) Status() error {
	doc, err := m.Document()
	if err != nil {
		return err
	}
	fmt.Fprintln(m.out, "\n=== Document Status ===")
	fmt.Fprintf(m.out, "Content: %q\n", doc)
	fmt.Fprintf(m.out, "Length:  %d characters\n", len(doc))
	fmt.Fprintf(m.out, "Undo stack: %d operations\n", m.nUndo)
	fmt.Fprintf(m.out, "Redo stack: %d operations\n", m.nRedo)
	return nil
}

// History returns the operations of both stacks, top first, leaving the
// stacks as they were (the lab's exercise 3).
func (m *Manager) History(ctx context.Context) (undo, redo []Op, err error) {
	if undo, err = history(ctx, m.undo); err != nil {
		return nil, nil, fmt.Errorf("read the undo history: %w", err)
	}
	if redo, err = history(ctx, m.redo); err != nil {
		return nil, nil, fmt.Errorf("read the redo history: %w", err)
	}
	return undo, redo, nil
}

// history drains st through a pump.Stack source and pushes what it got back
// through a pump.StackWriter, oldest first, so st ends as it started. A
// stack source delivers the values already in the stack in exact LIFO
// order; nothing else pushes while it runs.
func history(ctx context.Context, st *bpfmaps.Stack[Op]) ([]Op, error) {
	src, err := pump.Stack[Op](ctx, st.Map())
	if err != nil {
		return nil, err
	}
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }() // delivers what the stack holds, then closes C
	var ops []Op
	for op := range src.C() {
		ops = append(ops, op)
	}
	if err := <-closed; err != nil {
		return ops, err
	}

	w, err := pump.StackWriter[Op](ctx, st.Map())
	if err != nil {
		return ops, err
	}
	for i := len(ops) - 1; i >= 0; i-- {
		select {
		case w.C() <- ops[i]:
		case <-ctx.Done():
			w.Close()
			return ops, context.Cause(ctx)
		}
	}
	close(w.C())
	return ops, w.Wait()
}

// DisplayHistory prints both stacks, top first.
func (m *Manager) DisplayHistory(ctx context.Context) error {
	undo, redo, err := m.History(ctx)
	if err != nil {
		return err
	}
	for _, h := range []struct {
		title string
		ops   []Op
	}{{"Undo History", undo}, {"Redo History", redo}} {
		fmt.Fprintf(m.out, "\n=== %s ===\n", h.title)
		if len(h.ops) == 0 {
			fmt.Fprintln(m.out, "  (empty)")
		}
		for i, op := range h.ops[:min(len(h.ops), 10)] {
			fmt.Fprintf(m.out, "  %d: %v\n", i+1, op)
		}
	}
	return nil
}
