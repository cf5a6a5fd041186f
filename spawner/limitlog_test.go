package spawner

import (
	"testing"
	"time"
)

func TestLogBudgetLetsMaxThroughAndCountsTheRest(t *testing.T) {
	type held struct{ records, bytes int64 }
	summaries := make(chan held, 10)
	b := newLogBudget(3, 100, 100*time.Millisecond, func(n, size int64) { summaries <- held{n, size} })
	now := time.Now()
	var allowed int
	for i := range 10 {
		if b.allow(now, 10*i) { // 0, 10, 20 bytes: within both limits
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("records allowed in one period: got %d; want 3", allowed)
	}
	select {
	case s := <-summaries:
		if s != (held{7, 30 + 40 + 50 + 60 + 70 + 80 + 90}) {
			t.Errorf("summary: got %+v; want 7 records of 420 bytes", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no summary within 5s")
	}
	// The summary took a record of the new period.
	later := time.Now()
	if !b.allow(later, 0) || !b.allow(later, 0) || b.allow(later, 0) {
		t.Error("after a summary: want 2 records allowed in its period, then none")
	}
	// Bytes alone hold a record back.
	b = newLogBudget(0, 100, time.Hour, func(int64, int64) {})
	if !b.allow(now, 100) || b.allow(now, 1) {
		t.Error("byte budget of 100: want a 100-byte record allowed, then none")
	}
	var none *logBudget
	if !none.allow(now, 1<<20) {
		t.Error("nil budget: want every record allowed")
	}
}

func BenchmarkLogBudgetAllow(b *testing.B) {
	budget := newLogBudget(100, 0, time.Second, func(int64, int64) {})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		budget.allow(now, 0)
	}
}
