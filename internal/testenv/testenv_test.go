package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

const childEnv = "BPFCHAN_TESTENV_CHILD"

// TestChild is the body run by TestRequireBPFWithoutPrivilege in a child
// process that has dropped root; on its own it only checks that BPF works.
func TestChild(t *testing.T) {
	RequireBPF(t)
	if os.Getenv(childEnv) == "1" {
		t.Log("child: BPF permitted")
	}
}

// TestRequireBPFWithoutPrivilege runs TestChild as an unprivileged user:
// it must skip, saying why, and fail when BPFCHAN_REQUIRE_BPF=1.
func TestRequireBPFWithoutPrivilege(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a child process without privileges")
	}
	// The test binary lives in a directory only root may enter: copy it.
	dir, err := os.MkdirTemp("", "testenv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "child.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		require  string
		wantFail bool
		want     string
	}{
		{"", false, "BPF not permitted"},
		{"1", true, "BPF is required (BPFCHAN_REQUIRE_BPF=1) but not permitted"},
	} {
		cmd := exec.Command(bin, "-test.run", "^TestChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1", RequireEnv+"="+tc.require)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Fatalf("require=%q: failed=%v (%v), want %v; output:\n%s", tc.require, failed, err, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Fatalf("require=%q: output lacks %q:\n%s", tc.require, tc.want, out)
		}
	}
}
