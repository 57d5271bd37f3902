#!/usr/bin/env bash
# The test command of the README: every package of both modules (the core
# and jetstream/, a module of its own), with the race detector, on the real
# kernel; then again as 32-bit (386) binaries on the same kernel, which runs
# them as compat processes: 4-byte pointers and ints against the kernel's
# 64-bit ring positions and bpf_attr fields (no race detector on 386).
# BPFCHAN_REQUIRE_BPF=1 turns "BPF not permitted" skips into failures; run
# as root (or with CAP_BPF + CAP_PERFMON).
set -euo pipefail
cd "$(dirname "$0")"
export BPFCHAN_REQUIRE_BPF=1
go test -race -count=1 ./...
(cd jetstream && go test -race -count=1 ./...)
GOARCH=386 go test -count=1 ./...
# Not internal/natstest on 386: nats-server v2.15.3's clustered mode panics
# there (an unaligned 64-bit atomic in metaClusterSnapshotStats), and its
# tests start a cluster. The module's own packages run.
(cd jetstream && GOARCH=386 go test -count=1 . ./examples/... ./internal/ringprod)
