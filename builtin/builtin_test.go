package builtin

import (
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	got := Names()
	want := []string{"chargen", "daytime", "discard", "echo", "time"}
	if !slices.Equal(got, want) {
		t.Errorf("Names(): got %q; want %q", got, want)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Names(): got %q; want it sorted", got)
	}
	got[0] = "changed"
	if again := Names(); again[0] != "chargen" {
		t.Errorf("Names() after changing an earlier result: got %q; want %q", again, want)
	}
}

func TestValid(t *testing.T) {
	for _, name := range Names() {
		if !Valid(name) {
			t.Errorf("Valid(%q): got false; want true", name)
		}
	}
	for _, name := range []string{"", "Echo", "ECHO", "echo ", "quotd", "qotd", "tcpmux", "time\x00"} {
		if Valid(name) {
			t.Errorf("Valid(%q): got true; want false", name)
		}
	}
}
