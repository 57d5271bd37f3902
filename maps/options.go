package maps

import "fmt"

// maxName is the longest map name the kernel keeps (BPF_OBJ_NAME_LEN less
// its NUL).
const maxName = 15

// MapOption configures a map made by a New* constructor.
type MapOption func(*mapConfig)

type mapConfig struct {
	name string
}

// WithName names the map. bpftool map show lists it under that name, and
// every error of the module names the map by it (`Hash map "counts" (id
// 12)`). The kernel allows at most 15 characters, each one of A-Z, a-z,
// 0-9, _ and the dot; any other name is refused by the constructor with an
// error matching ErrInvalidName (cilium would cut a longer one silently).
// Without WithName a map is unnamed, and errors name it by type and ID.
func WithName(name string) MapOption {
	return func(c *mapConfig) { c.name = name }
}

// checkName refuses a map name the kernel would refuse (EINVAL) or cilium
// would cut.
func checkName(name string) error {
	if len(name) > maxName {
		return fmt.Errorf("name %q is %d bytes, the kernel keeps %d: %w", name, len(name), maxName, ErrInvalidName)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.') {
			return fmt.Errorf("name %q has %q, the kernel allows only A-Z, a-z, 0-9, _ and .: %w", name, r, ErrInvalidName)
		}
	}
	return nil
}
