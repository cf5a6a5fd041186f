package builtin

import (
	"net"
	"time"
)

// daytimeLayout is RFC 867's suggested "Weekday, Month Day, Year
// Time-Zone", as in its example "Tuesday, February 22, 1982 17:37:43-PST"
// (whose weekday is wrong: that day was a Monday). The hyphen is a literal
// separator, not the sign of an offset.
const daytimeLayout = "Monday, January 2, 2006 15:04:05-MST"

// daytimeLine returns t as the line daytime sends, CR LF included, in t's
// location.
func daytimeLine(t time.Time) []byte {
	line := t.AppendFormat(make([]byte, 0, 64), daytimeLayout)
	return append(line, '\r', '\n')
}

// serveDaytime sends the current date and time and closes conn (RFC 867).
// It reads nothing: a client that sent data may see the close as a reset
// after the line, because the kernel resets a connection closed with
// unread input.
func serveDaytime(conn net.Conn, now func() time.Time) error {
	_, err := conn.Write(daytimeLine(now()))
	return finish(conn, err)
}

// replyDaytime answers any datagram with the daytime line (RFC 867).
func replyDaytime(_ []byte, now func() time.Time) ([]byte, bool) {
	return daytimeLine(now()), true
}
