package main

// The BPF object and its Go bindings (probe_bpfel.go, probe_bpfel.o) are
// generated and committed, so that `go run` needs no clang. To regenerate
// (clang, llvm and libbpf-dev installed), from the jetstream directory:
//
//	go generate ./examples/fleet
//
// bpf2go runs from the core module (its go.mod lists it as a tool), so this
// module's go.mod needs no tool requirement of its own.

//go:generate go -C ../../.. tool bpf2go -go-package main -output-dir jetstream/examples/fleet -tags linux -target bpfel -type event probe jetstream/examples/fleet/bpf/probe.c -- -mcpu=v3 -idirafter /usr/include/x86_64-linux-gnu -Wall -Werror
