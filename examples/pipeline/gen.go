package main

// The BPF object and its Go bindings (tracer_bpfel.go, tracer_bpfel.o) are
// generated and committed, so that `go run` needs no clang. To regenerate
// (clang, llvm and libbpf-dev installed):
//
//	go generate ./examples/pipeline

//go:generate go tool bpf2go -tags linux -target bpfel -type event tracer bpf/tracer.c -- -mcpu=v3 -idirafter /usr/include/x86_64-linux-gnu -Wall -Werror
//go:generate sh gensyscalls.sh
