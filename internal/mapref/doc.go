// Package mapref is where every bpfchan handle meets the caller's map: it
// names a kernel map the one way every error of the module does,
//
//	Queue map "work" (id 17)
//
// (cilium's name of the type, the kernel's name of the map, its ID; a map
// made without a name is `Queue map (id 17)`), and it takes the clone of the
// caller's *ebpf.Map that each handle owns (DESIGN rule 1), refusing a nil
// map ([ErrNilMap], which matches [ErrMapType]) or one already closed
// ([ErrClosed]).
//
// The sentinels defined here are the module's: package maps re-exports the
// ones about maps (maps.ErrClosed, maps.ErrMapType, maps.ErrNilMap,
// maps.ErrOutOfRange), and pump and watch [ErrOption] (this is the one
// package under all of them), so one value matches in every package.
package mapref
