package snapshot

import "golang.org/x/sys/unix"

// BeforeBatch makes f run before each batch lookup of t; when f returns
// true, the kernel is made to refuse that call with EINVAL (a batch lookup
// with BPF_F_LOCK on a map without a spin lock).
func BeforeBatch(t *Table, f func() (refuse bool)) {
	t.src = &refusing{kernel: t.src.(*kernel), refuse: f}
}

type refusing struct {
	*kernel
	refuse func() bool
}

func (r *refusing) lookupBatch(cursor []byte, first bool, keys, vals []byte, count int) (int, error) {
	r.sys.elemFlags = 0
	if r.refuse() {
		r.sys.elemFlags = unix.BPF_F_LOCK
	}
	return r.kernel.lookupBatch(cursor, first, keys, vals, count)
}
