package main

import (
	"context"
	"fmt"
	"io"
)

// A step is one action of a script and the document the lab expects after it.
type step struct {
	do   func(context.Context, *Manager) error
	want string
	note string // printed before the step, when set
}

// A script is one of the lab's runs: test (its unit tests), demo (its
// demo-undo-system) and multi (its multi-level undo demo).
type script struct {
	name  string
	title string
	steps []step
	after func(context.Context, *Manager) error // runs at the end, when set
}

func insert(pos int, text string) func(context.Context, *Manager) error {
	return func(_ context.Context, m *Manager) error { return m.Insert(pos, text) }
}

func del(pos, n int) func(context.Context, *Manager) error {
	return func(_ context.Context, m *Manager) error { return m.Delete(pos, n) }
}

func undo(ctx context.Context, m *Manager) error { _, err := m.Undo(ctx); return err }
func redo(ctx context.Context, m *Manager) error { _, err := m.Redo(ctx); return err }

func undoN(n int) func(context.Context, *Manager) error {
	return func(ctx context.Context, m *Manager) error { _, err := m.UndoN(ctx, n); return err }
}

func redoN(n int) func(context.Context, *Manager) error {
	return func(ctx context.Context, m *Manager) error { _, err := m.RedoN(ctx, n); return err }
}

func status(_ context.Context, m *Manager) error { return m.Status() }

// scripts are the lab's three runs, in the order its -main runs them, with
// the document states its asserts and comments give.
var scripts = []script{
	{name: "test", title: "Testing Undo System", steps: []step{
		{do: insert(0, "Test"), want: "Test", note: "Insert"},
		{do: undo, want: "", note: "Undo"},
		{do: redo, want: "Test", note: "Redo"},
		{do: insert(4, "ing"), want: "Testing", note: "Multiple insert"},
		{do: insert(7, " 123"), want: "Testing 123"},
		{do: undo, want: "Testing", note: "Multiple undo"},
		{do: undo, want: "Test"},
		{do: redo, want: "Testing", note: "Multiple redo"},
		{do: redo, want: "Testing 123"},
		{do: del(7, 4), want: "Testing", note: "Delete"},
		{do: undo, want: "Testing 123", note: "Undo delete"},
	}},
	{name: "demo", title: "Undo/Redo System Demo", steps: []step{
		{do: insert(0, "Hello"), want: "Hello"},
		{do: insert(5, " World"), want: "Hello World"},
		{do: insert(11, "!"), want: "Hello World!"},
		{do: status, want: "Hello World!", note: "After insertions"},
		{do: undo, want: "Hello World", note: "Undo sequence"},
		{do: undo, want: "Hello"},
		{do: status, want: "Hello"},
		{do: redo, want: "Hello World", note: "Redo"},
		{do: status, want: "Hello World"},
		{do: insert(5, "?"), want: "Hello? World", note: "New operation (clears redo)"},
		{do: redo, want: "Hello? World"}, // nothing to redo any more
		{do: status, want: "Hello? World"},
	}, after: func(ctx context.Context, m *Manager) error { return m.DisplayHistory(ctx) }},
	{name: "multi", title: "Multi-Level Undo Demo", steps: []step{
		{do: insert(0, "A"), want: "A"},
		{do: insert(1, "B"), want: "AB"},
		{do: insert(2, "C"), want: "ABC"},
		{do: insert(3, "D"), want: "ABCD"},
		{do: insert(4, "E"), want: "ABCDE"},
		{do: undoN(3), want: "AB", note: "Undo 3 operations"},
		{do: redoN(2), want: "ABCD", note: "Redo 2 operations"},
	}},
}

// play runs s on a fresh manager made by newManager and checks the
// document after every step. It returns how many steps did not give the
// expected document, or the error that stopped it.
func (s script) play(ctx context.Context, out io.Writer, newManager func() (*Manager, error)) (failed int, err error) {
	m, err := newManager()
	if err != nil {
		return 0, err
	}
	defer m.Close()
	fmt.Fprintf(out, "\n=== %s ===\n", s.title)
	for _, st := range s.steps {
		if st.note != "" {
			fmt.Fprintf(out, "\n--- %s ---\n", st.note)
		}
		if err := st.do(ctx, m); err != nil {
			return failed, err
		}
		got, err := m.Document()
		if err != nil {
			return failed, err
		}
		if got != st.want {
			failed++
			fmt.Fprintf(out, "FAIL: document %q, the lab expects %q\n", got, st.want)
		} else if s.name == "test" && st.note != "" {
			fmt.Fprintf(out, "%s: PASS\n", st.note)
		}
	}
	if s.after != nil {
		if err := s.after(ctx, m); err != nil {
			return failed, err
		}
	}
	final, err := m.Document()
	if err != nil {
		return failed, err
	}
	fmt.Fprintf(out, "\nFinal document (%s): %q\n", s.name, final)
	return failed, nil
}
