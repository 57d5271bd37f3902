package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syscallNames is the table of the running kernel's architecture (uname's
// machine, not GOARCH: a 32-bit build on a 64-bit kernel sees the 64-bit
// numbers of the processes it traces), empty for an architecture
// syscalls_table.go does not have: then syscalls show as numbers and
// -important takes numbers.
var syscallNames = syscallTables[kernelArch()]

// kernelArch returns the running kernel's architecture as Go names it, or
// uname's machine if it is none of those syscalls_table.go has.
func kernelArch() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	m := unix.ByteSliceToString(u.Machine[:])
	switch {
	case m == "x86_64":
		return "amd64"
	case m == "aarch64" || m == "arm64":
		return "arm64"
	case len(m) == 4 && m[0] == 'i' && m[2:] == "86":
		return "386"
	case strings.HasPrefix(m, "arm"):
		return "arm"
	}
	return m
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
