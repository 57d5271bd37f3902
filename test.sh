#!/usr/bin/env bash
# The test command of the README: every package, with the race detector, on
# the real kernel. BPFCHAN_REQUIRE_BPF=1 turns "BPF not permitted" skips into
# failures; run as root (or with CAP_BPF + CAP_PERFMON).
set -euo pipefail
cd "$(dirname "$0")"
BPFCHAN_REQUIRE_BPF=1 exec go test -race -count=1 ./...
