package spawner

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The load average is read at most once per loadRefresh, whatever the
// number of admissions, and a change shows after it.
func TestLoadAverageIsCachedForASecond(t *testing.T) {
	file := filepath.Join(t.TempDir(), "loadavg")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer func(old string) { loadAvgFile = old }(loadAvgFile)
	loadAvgFile = file
	var l loadAverage
	t0 := time.Now()

	write("5.00 1.00 1.00 1/100 4242\n")
	if !l.over(2, t0) {
		t.Fatalf("load 5.00, max 2: got not over; want over")
	}
	write("0.50 1.00 1.00 1/100 4242\n")
	if !l.over(2, t0.Add(loadRefresh-time.Millisecond)) {
		t.Errorf("within %v of the last read: got the file read again; want the cached 5.00", loadRefresh)
	}
	if l.over(2, t0.Add(loadRefresh)) {
		t.Errorf("%v after the last read: got the cached 5.00; want 0.50 read again", loadRefresh)
	}
	os.Remove(file)
	if l.over(2, t0.Add(3*loadRefresh)) || l.last() != 0.5 {
		t.Errorf("a failed read: got load %v; want the last value, 0.5", l.last())
	}
}
