package snapshot

// BeforeBatch makes f run before each batch lookup of t; when f returns
// true, the kernel is made to refuse that call with EINVAL (a batch lookup
// with BPF_F_LOCK on a map without a spin lock).
func BeforeBatch(t *Table, f func() (refuse bool)) { t.beforeBatch = f }
