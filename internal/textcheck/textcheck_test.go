package textcheck

import "testing"

func TestProblem(t *testing.T) {
	for s, want := range map[string]string{
		"Seoul DC":         "",
		"서울 데이터센터":         "",
		"a\x00b":           "contains a control character",
		"tab\there":        "contains a control character",
		"rtl\u202eevil":    "contains a bidirectional formatting character",
		"isolate\u2066x":   "contains a bidirectional formatting character",
		"arabic\u061cmark": "contains a bidirectional formatting character",
		"\xff":             "not valid UTF-8",
	} {
		if got := Problem(s); got != want {
			t.Errorf("Problem(%q) = %q, want %q", s, got, want)
		}
	}
	if !Unsafe('\u200f') || Unsafe('é') {
		t.Error("Unsafe is wrong")
	}
}
