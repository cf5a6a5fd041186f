package spawner

import "time"

// Every timer of the spawner that keeps instants as numbers (the deny
// list, per-source rates, the load average's refresh, the log and UDP
// reply budgets) reads them with sinceOrigin, on Go's monotonic clock: a
// step of the wall clock (NTP, date -s, a virtual machine's clock
// correction) neither ends nor stretches a denial, a pause or a budget.

// clockOrigin is sinceOrigin's zero: a year before the process started,
// so that every instant of its life is positive and 0 can mean "never".
var clockOrigin = time.Now().Add(-365 * 24 * time.Hour)

// sinceOrigin returns now, a reading of time.Now or one derived from it
// (by Add), as the monotonic time since clockOrigin. A time without a
// monotonic reading (time.Unix, time.Date) would be read on the wall clock.
func sinceOrigin(now time.Time) time.Duration { return now.Sub(clockOrigin) }
