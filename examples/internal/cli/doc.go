// Package cli is the start-up the example programs share: the signal
// handling of main, the flag set with its usage text and its checks, and the
// one sentence a user sees when BPF cannot be used here.
//
// It starts no goroutine of its own: [Program.Main] runs the program's run
// function on the calling goroutine and exits the process with the code run
// returns. The first SIGINT or SIGTERM cancels run's context; the handler is
// then restored, so that a second one kills the program.
//
// The exit codes are the examples' contract: [ExitOK], [ExitFailed], and
// [ExitUsage] for bad flags or when BPF is not available here (see
// [Program.Open]).
package cli
