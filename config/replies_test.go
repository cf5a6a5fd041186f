package config

import (
	"testing"
	"time"
)

func TestReplyBudgets(t *testing.T) {
	cfg, err := Parse([]byte(`
[defaults]
udp_reply_rate = "50/s"

[services.chargen]
protocol = "udp"
address = "127.0.0.1"
port = 19019
builtin = "chargen"
udp_reflection = true

[services.echo]
protocol = "udp"
address = "::1"
port = 19007
builtin = "echo"
udp_reflection = true
udp_reply_rate = 0
udp_reply_bytes = "0"
udp_reply_rate_per_source = "600/m"
udp_reply_bytes_per_source = "64k/10s"

[services.echo-tcp]
address = "127.0.0.1"
port = 19007
builtin = "echo"
`), "inetd.toml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Replies{
		"chargen": {Reflection: true, Rate: Rate{50, time.Second}, Bytes: DefaultReplyBytes,
			RatePerSource: DefaultReplyRatePerSource, BytesPerSource: DefaultReplyBytesPerSource},
		"echo": {Reflection: true, RatePerSource: Rate{600, time.Minute}, BytesPerSource: Rate{64 << 10, 10 * time.Second}},
		// A tcp built-in has no reply budget; the one in [defaults] is
		// not for it.
		"echo-tcp": {},
	}
	for _, s := range cfg.Services {
		if s.Replies != want[s.Name] {
			t.Errorf("services.%s: got replies %+v; want %+v", s.Name, s.Replies, want[s.Name])
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("got warnings %v; want none for loopback", cfg.Warnings)
	}
}
