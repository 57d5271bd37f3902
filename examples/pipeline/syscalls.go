package main

import (
	"fmt"
	"strconv"
	"strings"
)

// syscallName returns the name of syscall nr, or "sys_<nr>" when the table
// (syscalls_amd64.go on amd64, empty elsewhere) does not know it.
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
		return nil, fmt.Errorf("unknown syscall %q (use a name such as openat, or a number)", field)
	}
	return set, nil
}
