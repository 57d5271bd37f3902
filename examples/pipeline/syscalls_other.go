//go:build !amd64

package main

// syscallNames is empty outside amd64: syscalls are shown by number, and
// -important takes numbers.
var syscallNames = map[uint32]string{}
