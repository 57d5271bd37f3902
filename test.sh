#!/usr/bin/env bash
# The test command of the README: every package of both modules (the core
# and jetstream/, a module of its own), with the race detector, on the real
# kernel; then again as 32-bit binaries (386, or arm on arm64) on the
# same kernel, which runs them as compat processes: 4-byte pointers and
# ints against the kernel's 64-bit ring positions and bpf_attr fields (no
# race detector there).
# BPFCHAN_REQUIRE_BPF=1 turns "BPF not permitted" skips into failures; run
# as root (or with CAP_BPF + CAP_PERFMON).
set -euo pipefail
cd "$(dirname "$0")"
export BPFCHAN_REQUIRE_BPF=1
go test -race -count=1 ./...
(cd jetstream && go test -race -count=1 ./...)
# The 32-bit pass needs a host that runs 32-bit binaries (IA32 emulation
# on x86_64, AArch32 on arm64); without one it says so and is left out,
# unless BPFCHAN_REQUIRE_32BIT=1 (CI) makes that a failure.
case "$(go env GOHOSTARCH)" in
amd64) arch32=386 ;;
arm64) arch32=arm ;;
*) arch32= ;;
esac
if [ -z "$arch32" ] || ! GOARCH=$arch32 go test -count=1 -run '^$' ./chans >/dev/null 2>&1; then
  echo "test.sh: no 32-bit pass: this host does not run ${arch32:-32-bit} binaries" >&2
  [ "${BPFCHAN_REQUIRE_32BIT:-}" != 1 ] || exit 1
  exit 0
fi
GOARCH=$arch32 go test -count=1 ./...
# Not jetstream's internal/natstest: nats-server v2.15.3's clustered mode
# panics on 386 (an unaligned 64-bit atomic in metaClusterSnapshotStats),
# and its tests start a cluster. The module's own packages run.
(cd jetstream && GOARCH=$arch32 go test -count=1 $(go list ./... | grep -v '/internal/natstest$'))
