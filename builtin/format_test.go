package builtin

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func TestDaytimeLine(t *testing.T) {
	tests := []struct {
		at   time.Time
		want string
	}{
		// RFC 867's example reads "Tuesday, February 22, 1982 17:37:43-PST",
		// but 22 February 1982 was a Monday: the layout is the RFC's, the
		// weekday the calendar's.
		{rfc867Time(), "Monday, February 22, 1982 17:37:43-PST\r\n"},
		{rfc867Time().AddDate(0, 0, 1), "Tuesday, February 23, 1982 17:37:43-PST\r\n"},
		// One-digit day and hour, no padding; UTC keeps its name.
		{time.Date(2006, time.January, 2, 3, 4, 5, 0, time.UTC), "Monday, January 2, 2006 03:04:05-UTC\r\n"},
		// The zone is the time's own, not the process's.
		{time.Date(2024, time.December, 31, 23, 59, 59, 999e6, time.FixedZone("CET", 3600)), "Tuesday, December 31, 2024 23:59:59-CET\r\n"},
	}
	for _, tt := range tests {
		if got := string(daytimeLine(tt.at)); got != tt.want {
			t.Errorf("daytimeLine(%v): got %q; want %q", tt.at, got, tt.want)
		}
	}
}

func TestTimeBytes(t *testing.T) {
	tests := []struct {
		at   time.Time
		want uint32
	}{
		// RFC 868's own examples.
		{time.Date(1970, time.January, 1, 0, 0, 0, 0, time.UTC), 2208988800},
		{time.Date(1976, time.January, 1, 0, 0, 0, 0, time.UTC), 2398291200},
		{time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC), 2524521600},
		{time.Date(1983, time.May, 1, 0, 0, 0, 0, time.UTC), 2629584000},
		{time.Date(1858, time.November, 17, 0, 0, 0, 0, time.UTC), 1<<32 - 1297728000}, // -1,297,728,000
		// The epoch, the last second before the 2036 wrap, and the wrap.
		{time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(2036, time.February, 7, 6, 28, 15, 0, time.UTC), 1<<32 - 1},
		{time.Date(2036, time.February, 7, 6, 28, 16, 0, time.UTC), 0},
		// The zone does not matter, and fractions of a second are dropped.
		{time.Date(1970, time.January, 1, 1, 0, 0, 999e6, time.FixedZone("CET", 3600)), 2208988800},
	}
	for _, tt := range tests {
		got := timeBytes(tt.at)
		want := binary.BigEndian.AppendUint32(nil, tt.want)
		if !bytes.Equal(got, want) {
			t.Errorf("timeBytes(%v): got % x; want % x", tt.at, got, want)
		}
	}
	// The brief's anchor, spelled out in network byte order.
	if got, want := timeBytes(time.Unix(0, 0)), []byte{0x83, 0xaa, 0x7e, 0x80}; !bytes.Equal(got, want) {
		t.Errorf("timeBytes(Unix 0): got % x; want % x", got, want)
	}
}

func TestChargenLines(t *testing.T) {
	stream := appendChargen(nil, 96*74)
	line := func(n int) string { return string(stream[n*74 : (n+1)*74]) }
	want := []string{
		" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n",
		"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n",
		"\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n",
	}
	for n, w := range want {
		if got := line(n); got != w {
			t.Errorf("line %d: got %q; want %q", n, got, w)
		}
	}
	// Line 24 is the first to wrap around the ring, from '~' to ' '.
	if got, want := line(24), "89:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ \r\n"; got != want {
		t.Errorf("line 24: got %q; want %q", got, want)
	}
	if got, want := line(95), line(0); got != want {
		t.Errorf("line 95: got %q; want line 0, %q", got, want)
	}
	for n := range 96 {
		l := line(n)
		if len(l) != 74 || l[72:] != "\r\n" {
			t.Errorf("line %d: got %q; want 72 characters and CR LF", n, l)
		}
		for i := range 72 {
			if l[i] < ' ' || l[i] > '~' {
				t.Errorf("line %d, column %d: got %q; want printable ASCII", n, i, l[i])
			}
		}
	}
	if d := diff(stream, wantChargen(0, len(stream))); d != "" {
		t.Errorf("appendChargen against the line-by-line pattern: %s", d)
	}
}
