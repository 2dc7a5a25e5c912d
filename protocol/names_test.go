package protocol

import "testing"

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"add", true}, {"default", true}, {"é-ü 1.2", true}, {"", true},
		{"add\x00high", false}, {"\x1f", false}, {"a\x7f", false}, {"tab\there", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
		if got := ValidName([]byte(tc.name)); got != tc.ok {
			t.Errorf("ValidName([]byte(%q)) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
