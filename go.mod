module github.com/bpfchan/bpfchan

go 1.25.0

require (
	github.com/cilium/ebpf v0.22.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.22.0
	golang.org/x/sys v0.47.0
)

tool github.com/cilium/ebpf/cmd/bpf2go
