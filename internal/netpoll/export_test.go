package netpoll

import "time"

// Period returns r's current period between looks.
func Period(r *Reg) time.Duration {
	mu.Lock()
	defer mu.Unlock()
	return r.cur
}

// DispatchEvery is how many Ready calls a look makes between dispatches.
const DispatchEvery = dispatchEvery
