package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/bpfchan/bpfchan/examples/internal/clitest"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRun runs the three parts of the lab and checks that every step gave
// the lab's document and the final documents are the lab's.
func TestRun(t *testing.T) {
	out := clitest.Run(context.Background(), t, run)
	clitest.Contains(t, out,
		`Final document (test): "Testing 123"`,
		`Final document (demo): "Hello? World"`,
		`Final document (multi): "ABCD"`,
		"Undo delete: PASS",
		"Nothing to redo", // the demo's redo after a new edit
		"=== Undo History ===\n  1: INSERT at 5: '?'\n  2: INSERT at 5: ' World'\n  3: INSERT at 0: 'Hello'\n",
		"Every step gave the lab's document",
	)
	if strings.Contains(out, "FAIL") {
		t.Errorf("a step failed:\n%s", out)
	}
}

// TestRunPart runs one part by name.
func TestRunPart(t *testing.T) {
	testenv.RequireBPF(t)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-wait", "0", "multi"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run multi: exit code %d, want 0; stderr:\n%s", code, &stderr)
	}
	if got := stdout.String(); strings.Contains(got, "=== Undo/Redo System Demo ===") || !strings.Contains(got, `final: multi "ABCD"`) {
		t.Errorf("run multi printed:\n%s", got)
	}
}

func TestBadArguments(t *testing.T) {
	clitest.Usage(t, run, []string{"bogus"}, []string{"-depth", "0"}, []string{"-wait", "-1s"}, []string{"-nosuchflag"})
}

func newTestManager(t *testing.T, depth int) *Manager {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := NewManager(depth, 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func wantDoc(t *testing.T, m *Manager, want string) {
	t.Helper()
	got, err := m.Document()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("document %q, want %q", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReplace checks the lab's third kind of edit, which its scripts do not
// use: replace, its undo and its redo.
func TestReplace(t *testing.T) {
	m := newTestManager(t, 10)
	ctx := context.Background()
	must(t, m.Insert(0, "Hello World"))
	must(t, m.Replace(6, "World", "BPF"))
	wantDoc(t, m, "Hello BPF")
	if ok, err := m.Undo(ctx); !ok || err != nil {
		t.Fatalf("Undo: %v, %v; want true, nil", ok, err)
	}
	wantDoc(t, m, "Hello World")
	if op, ok, err := m.PeekRedo(); !ok || err != nil || op.Type != OpReplace || op.text() != "BPF" || op.old() != "World" {
		t.Fatalf("PeekRedo: %v, %v, %v; want the replace", op, ok, err)
	}
	if ok, err := m.Redo(ctx); !ok || err != nil {
		t.Fatalf("Redo: %v, %v; want true, nil", ok, err)
	}
	wantDoc(t, m, "Hello BPF")
}

// TestDepth checks that a full undo stack forgets its oldest operation.
func TestDepth(t *testing.T) {
	m := newTestManager(t, 2)
	ctx := context.Background()
	for i, s := range []string{"A", "B", "C"} {
		must(t, m.Insert(i, s))
	}
	for _, want := range []struct {
		ok  bool
		doc string
	}{{true, "AB"}, {true, "A"}, {false, "A"}} {
		ok, err := m.Undo(ctx)
		must(t, err)
		if ok != want.ok {
			t.Fatalf("Undo: %v, want %v", ok, want.ok)
		}
		wantDoc(t, m, want.doc)
	}
}

// TestHistory checks that reading the history through the pumps leaves both
// stacks as they were.
func TestHistory(t *testing.T) {
	m := newTestManager(t, 10)
	ctx := context.Background()
	for i, s := range []string{"a", "b", "c", "d"} {
		must(t, m.Insert(i, s))
	}
	if _, err := m.UndoN(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read sees what the first pushed back
		undo, redo, err := m.History(ctx)
		must(t, err)
		if got, want := texts(undo), "b a"; got != want {
			t.Errorf("undo history %q, want %q", got, want)
		}
		if got, want := texts(redo), "c d"; got != want {
			t.Errorf("redo history %q, want %q", got, want)
		}
	}
	if _, err := m.RedoN(ctx, 2); err != nil {
		t.Fatal(err)
	}
	wantDoc(t, m, "abcd")
}

func texts(ops []Op) string {
	var s []string
	for _, op := range ops {
		s = append(s, op.text())
	}
	return strings.Join(s, " ")
}

func TestTooLong(t *testing.T) {
	m := newTestManager(t, 10)
	if err := m.Insert(0, strings.Repeat("x", maxText+1)); err == nil {
		t.Fatal("Insert of a text over 116 bytes: no error")
	}
	for range maxDoc / maxText {
		must(t, m.Insert(0, strings.Repeat("x", maxText)))
	}
	if err := m.Insert(0, strings.Repeat("x", maxText)); err == nil {
		t.Fatal("Insert past the document map's 1020 bytes: no error")
	}
}
