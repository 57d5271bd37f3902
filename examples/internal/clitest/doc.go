// Package clitest runs an example program's run function in its tests, with
// the checks the examples' tests share. It starts no goroutines; its helpers
// fail the calling test through t, and skip it (through testenv.RequireBPF)
// where BPF is not usable.
package clitest
