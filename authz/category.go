package authz

import (
	"fmt"
	"iter"
	"math/bits"
	"strings"
)

// Category is one of the seven feature-page permissions of KIOPS. The
// zero Category is invalid, so a forgotten field never means "infra".
type Category uint8

// The seven categories, in the order the product lists them. The order
// defines CategorySet's bits and never changes.
const (
	Infra Category = iota + 1
	Service
	Backup
	Device
	Database
	VPN
	Audit

	numCategories = int(Audit)
)

var categoryNames = [...]string{
	Infra:    "infra",
	Service:  "service",
	Backup:   "backup",
	Device:   "device",
	Database: "database",
	VPN:      "vpn",
	Audit:    "audit",
}

// Categories returns the seven categories in their canonical order.
func Categories() []Category {
	return []Category{Infra, Service, Backup, Device, Database, VPN, Audit}
}

// Valid reports whether c is one of the seven categories.
func (c Category) Valid() bool { return c >= Infra && c <= Audit }

// String returns the category's lower-case name, such as "infra".
func (c Category) String() string {
	if c.Valid() {
		return categoryNames[c]
	}
	return fmt.Sprintf("Category(%d)", uint8(c))
}

// ParseCategory parses a category's lower-case name. An unknown name is an
// *InvalidError matching ErrInvalid.
func ParseCategory(s string) (Category, error) {
	for c := Infra; c <= Audit; c++ {
		if categoryNames[c] == s {
			return c, nil
		}
	}
	return 0, invalid("category", s, "want one of infra, service, backup, device, database, vpn, audit")
}

// MarshalText implements encoding.TextMarshaler.
func (c Category) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, invalid("category", c.String(), "not a category")
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseCategory.
func (c *Category) UnmarshalText(b []byte) error {
	v, err := ParseCategory(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// CategorySet is any combination of the seven categories, one bit each.
// The zero value is the empty set. It is a value type: comparable, cheap to
// copy, and safe to share.
type CategorySet uint8

// AllCategories is the set of all seven categories.
const AllCategories CategorySet = 1<<numCategories - 1

// NewCategorySet returns the set of the given categories. It panics on an
// invalid Category, which only a programming error can produce (parse
// untrusted names with ParseCategory or ParseCategorySet).
func NewCategorySet(cs ...Category) CategorySet {
	var s CategorySet
	for _, c := range cs {
		if !c.Valid() {
			panic(fmt.Sprintf("authz: NewCategorySet: invalid %v", c))
		}
		s |= c.bit()
	}
	return s
}

func (c Category) bit() CategorySet { return 1 << (c - 1) }

// Has reports whether c is in s.
func (s CategorySet) Has(c Category) bool { return c.Valid() && s&c.bit() != 0 }

// With returns s with c added.
func (s CategorySet) With(c Category) CategorySet { return s | NewCategorySet(c) }

// Without returns s with c removed.
func (s CategorySet) Without(c Category) CategorySet { return s &^ NewCategorySet(c) }

// Union returns the categories in s or t.
func (s CategorySet) Union(t CategorySet) CategorySet { return s | t }

// Minus returns the categories in s that are not in t.
func (s CategorySet) Minus(t CategorySet) CategorySet { return s &^ t }

// Contains reports whether every category of t is in s.
func (s CategorySet) Contains(t CategorySet) bool { return t&^s == 0 }

// Len returns the number of categories in s.
func (s CategorySet) Len() int { return bits.OnesCount8(uint8(s & AllCategories)) }

// Empty reports whether s holds no category.
func (s CategorySet) Empty() bool { return s&AllCategories == 0 }

// Valid reports whether s holds only the seven known bits.
func (s CategorySet) Valid() bool { return s&^AllCategories == 0 }

// All yields the categories of s in canonical order.
func (s CategorySet) All() iter.Seq[Category] {
	return func(yield func(Category) bool) {
		for c := Infra; c <= Audit; c++ {
			if s.Has(c) && !yield(c) {
				return
			}
		}
	}
}

// Slice returns the categories of s in canonical order.
func (s CategorySet) Slice() []Category {
	out := make([]Category, 0, s.Len())
	for c := range s.All() {
		out = append(out, c)
	}
	return out
}

// String returns the names of the categories of s in canonical order,
// separated by commas ("infra,vpn"); the empty set is "".
func (s CategorySet) String() string {
	var b strings.Builder
	for c := range s.All() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// ParseCategorySet parses the comma-separated form String returns. The
// empty string is the empty set. Unknown names, empty elements, spaces and
// duplicates are refused with an *InvalidError, so that one set has one
// spelling.
func ParseCategorySet(s string) (CategorySet, error) {
	if s == "" {
		return 0, nil
	}
	var set CategorySet
	for name := range strings.SplitSeq(s, ",") {
		c, err := ParseCategory(name)
		if err != nil {
			return 0, err
		}
		if set.Has(c) {
			return 0, invalid("category set", s, "repeats "+name)
		}
		set |= c.bit()
	}
	return set, nil
}

// ParseCategoryNames parses a list of category names, as a JSON array or a
// form's checkboxes give them. Unknown names and duplicates are refused.
func ParseCategoryNames(names []string) (CategorySet, error) {
	var set CategorySet
	for _, name := range names {
		c, err := ParseCategory(name)
		if err != nil {
			return 0, err
		}
		if set.Has(c) {
			return 0, invalid("category set", strings.Join(names, ","), "repeats "+name)
		}
		set |= c.bit()
	}
	return set, nil
}

// MarshalText implements encoding.TextMarshaler with String.
func (s CategorySet) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, invalid("category set", fmt.Sprintf("%#x", uint8(s)), "unknown bits")
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseCategorySet.
func (s *CategorySet) UnmarshalText(b []byte) error {
	v, err := ParseCategorySet(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
