package authz

import (
	"syscall"
	"unsafe"
)

// madvCollapse is MADV_COLLAPSE (Linux 6.1 and later), which the syscall
// package does not name.
const madvCollapse = 25

// adviseHugePages asks Linux to back the whole 2 MiB pages inside b with
// transparent huge pages: MADV_HUGEPAGE for pages not touched yet, and
// MADV_COLLAPSE for those the Go runtime had touched already (memory it
// reused, or zeroed), which MADV_HUGEPAGE alone would leave to a
// background thread that gets to them minutes later, if at all. It is
// only advice: the contents do not change, and where the kernel is older
// or has huge pages disabled or none free, nothing happens. Memory the Go
// runtime later frees or reuses is unaffected apart from its page size.
func adviseHugePages(b []byte) {
	const huge = 2 << 20
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := int((huge - addr%huge) % huge) // to the first 2 MiB boundary
	if skip >= len(b) {
		return
	}
	b = b[skip:]
	if n := len(b) &^ (huge - 1); n > 0 {
		// Advice: a failure changes nothing.
		_ = syscall.Madvise(b[:n], syscall.MADV_HUGEPAGE)
		_ = syscall.Madvise(b[:n], madvCollapse)
	}
}
