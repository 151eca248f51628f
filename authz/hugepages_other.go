//go:build !linux

package authz

// adviseHugePages does nothing outside Linux (see hugepages_linux.go).
func adviseHugePages([]byte) {}
