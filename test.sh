#!/usr/bin/env bash
# The test command of the README: every package of both modules (the core
# and jetstream/, a module of its own), with the race detector, on the real
# kernel. BPFCHAN_REQUIRE_BPF=1 turns "BPF not permitted" skips into
# failures; run as root (or with CAP_BPF + CAP_PERFMON).
set -euo pipefail
cd "$(dirname "$0")"
export BPFCHAN_REQUIRE_BPF=1
go test -race -count=1 ./...
(cd jetstream && go test -race -count=1 ./...)
