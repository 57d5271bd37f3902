package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syscallNames is the table of the running kernel's architecture (not
// GOARCH: a 32-bit build on a 64-bit kernel sees the 64-bit numbers of the
// native processes it traces), empty for an architecture
// syscalls_table.go does not have: then syscalls show as numbers and
// -important takes numbers. (A compat task's syscalls, a 32-bit process on
// a 64-bit kernel, carry its own ABI's numbers and are misnamed.)
var syscallNames = syscallTables[kernelArch()]

// kernelArch returns the running kernel's architecture as Go names it:
// /proc/sys/kernel/arch (Linux 6.1 on; a 32-bit personality does not
// change it), else uname's machine, which a 32-bit personality (linux32)
// does change, to i686 on x86_64 and armv8l on arm64.
func kernelArch() string {
	if b, err := os.ReadFile("/proc/sys/kernel/arch"); err == nil {
		return archOf(strings.TrimSpace(string(b)))
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return archOf(unix.ByteSliceToString(u.Machine[:]))
}

// archOf names a kernel machine string as GOARCH does, or returns it as it
// is when syscalls_table.go has no table for it.
func archOf(machine string) string {
	switch m := machine; {
	case m == "x86_64":
		return "amd64"
	case m == "aarch64" || m == "arm64" || m == "armv8l" || m == "armv8b":
		// armv8l is what uname says under a 32-bit personality on an
		// arm64 kernel; a 32-bit ARM kernel says armv7l on ARMv8 too.
		return "arm64"
	case len(m) == 4 && m[0] == 'i' && m[2:] == "86":
		return "386"
	case strings.HasPrefix(m, "arm"):
		return "arm"
	case m == "loongarch64":
		return "loong64"
	}
	return machine // riscv64 and ppc64le are named alike
}

// syscallName returns the name of syscall nr, or "sys_<nr>" when the table
// does not know it.
func syscallName(nr uint32) string {
	if name, ok := syscallNames[nr]; ok {
		return name
	}
	return "sys_" + strconv.FormatUint(uint64(nr), 10)
}

// parseSyscalls turns a comma-separated list of syscall names (or numbers)
// into a set of syscall numbers.
func parseSyscalls(list string) (map[uint32]bool, error) {
	byName := make(map[string]uint32, len(syscallNames))
	for nr, name := range syscallNames {
		byName[name] = nr
	}
	set := make(map[uint32]bool)
	for _, field := range strings.Split(list, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		if nr, ok := byName[strings.ToLower(field)]; ok {
			set[nr] = true
			continue
		}
		if nr, err := strconv.ParseUint(strings.TrimPrefix(field, "sys_"), 10, 32); err == nil {
			set[uint32(nr)] = true
			continue
		}
		if len(syscallNames) == 0 {
			return nil, fmt.Errorf("unknown syscall %q: no syscall names for this kernel's architecture (%s): use numbers", field, kernelArch())
		}
		return nil, fmt.Errorf("unknown syscall %q (use a name such as openat, or a number)", field)
	}
	return set, nil
}
