package identity

import "unicode/utf8"

// BlocklistLen returns the number of blocklist entries and how many of
// them have at least MinPasswordLength code points.
func BlocklistLen() (n, long int) {
	for s := range blocklist() {
		if utf8.RuneCountInString(s) >= MinPasswordLength {
			long++
		}
	}
	return len(blocklist()), long
}

// BlocklistTop returns the n most common entries of the zxcvbn list.
func BlocklistTop(n int) []string {
	return zxcvbnPasswords()[:n]
}

// Derivation is one argon2id computation a Hasher ran.
type Derivation struct {
	Password        string // as hashed: after NFKC
	Memory, Time    uint32
	Threads         uint8
	SaltLen, KeyLen uint32
}

// ObserveDerive makes h report every key derivation to fn before running
// it as usual.
func ObserveDerive(h *Hasher, fn func(Derivation)) {
	h.derive = func(password, salt []byte, p params) []byte {
		fn(Derivation{string(password), p.memory, p.time, p.threads, uint32(len(salt)), p.keyLen})
		return argon2id(password, salt, p)
	}
}

// ThrottleLen returns the number of accounts and addresses t tracks.
func ThrottleLen(t *Throttle) (accounts, addresses int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.accounts), len(t.addresses)
}
