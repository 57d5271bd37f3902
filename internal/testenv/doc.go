// Package testenv is the machinery every bpfchan test package shares: the one
// helper through which a kernel test skips when BPF is not permitted
// ([RequireBPF]), the TestMain that fails a package on leaked goroutines or
// file descriptors ([Main]), and a private bpffs mount for pinning tests
// ([BPFFS]).
//
// A skip says why. With BPFCHAN_REQUIRE_BPF=1 in the environment (CI sets it)
// the same condition fails the test instead, so a CI machine that lost its
// BPF privileges cannot pass by skipping everything.
package testenv
