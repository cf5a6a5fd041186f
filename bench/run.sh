#!/bin/sh
# bench/run.sh [goinetd-bench flags...]
#
# One command for the whole comparison: installs the peers that are
# missing (Debian: openbsd-inetd, ucspi-tcp, ipsvd, systemd; xinetd is
# unpacked under bench/peers/, since it conflicts with openbsd-inetd),
# builds goinetd, goinetd-bench and the C floor into bench/bin/, and runs
# goinetd-bench. The report (markdown) goes to standard output and to
# bench/out/report-TIME.md, every round's figures to bench/out/report-TIME.json.
# Flags are passed to goinetd-bench: `bench/run.sh -rounds 1 -duration 1s`
# is a quick look. `bench/run.sh -tls` (make bench-tls) is the TLS
# comparison instead: goinetd, stunnel4 and socat, each before /bin/cat;
# it installs only those two peers. See bench/README.md.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

say() { echo "bench/run.sh: $*" >&2; }

# -tls: the TLS comparison, whose peers are stunnel4 and socat.
tls=
for arg in "$@"; do
	case $arg in -tls | --tls | -tls=true | --tls=true) tls=1 ;; esac
done

# Superservers already running before we start are not ours: never touched.
before_inetd=$(pgrep -x inetd || true)
before_xinetd=$(pgrep -x xinetd || true)

# A Debian package's postinst starts its service unless policy-rc.d says
# no. None may start here: for the time of the install, say no (unless
# the machine already does).
policy=/usr/sbin/policy-rc.d
made_policy=
cleanup() {
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
}
trap cleanup EXIT INT TERM

apt_install() {
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		say "not root or no apt-get: not installing $*; what is missing is skipped"
		return 0
	fi
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# made by goinetd bench/run.sh while it installs; removed after\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	say "installing $*"
	if [ -z "${apt_updated:-}" ]; then
		apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# command=package: the peers, and what builds the floor.
missing=
pairs="inetd=openbsd-inetd tcpserver=ucspi-tcp tcpsvd=ipsvd systemd-socket-activate=systemd gcc=gcc"
[ -z "$tls" ] || pairs="stunnel4=stunnel4 socat=socat gcc=gcc"
for pair in $pairs; do
	command -v "${pair%%=*}" >/dev/null 2>&1 || missing="$missing ${pair#*=}"
done
# An inetd that is not OpenBSD's (inetutils-inetd, say) is not the peer.
if [ -z "$tls" ] && command -v inetd >/dev/null 2>&1 && ! dpkg -s openbsd-inetd >/dev/null 2>&1; then
	say "the inetd in PATH is not openbsd-inetd's; installing openbsd-inetd may replace it"
	missing="$missing openbsd-inetd"
fi
# shellcheck disable=SC2086 # a list of package names
[ -z "$missing" ] || apt_install $missing

# xinetd conflicts with openbsd-inetd in apt: fetch its package and unpack
# it under bench/peers/xinetd, with the libraries it links installed.
xinetd=bench/peers/xinetd/usr/sbin/xinetd
if [ -z "$tls" ] && [ ! -x "$xinetd" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	apt_install libwrap0 libtirpc3 libselinux1
	mkdir -p bench/peers
	tmp=$(mktemp -d)
	say "downloading xinetd into bench/peers/xinetd"
	(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root xinetd >/dev/null)
	dpkg -x "$tmp"/xinetd_*.deb bench/peers/xinetd
	rm -rf "$tmp"
fi

# If a package started its service anyway, it was this script's doing: stop
# those processes, and only those. (stunnel4's package starts nothing: its
# service runs only the configs in /etc/stunnel, and ships none.)
for name in inetd xinetd; do
	case $name in inetd) before=$before_inetd ;; *) before=$before_xinetd ;; esac
	for pid in $(pgrep -x "$name" || true); do
		if ! echo "$before" | grep -qx "$pid"; then
			say "stopping the $name (pid $pid) that its package started"
			kill "$pid" 2>/dev/null || true
		fi
	done
done

say "building goinetd, goinetd-bench and the floor into bench/bin"
mkdir -p bench/bin bench/out
go build -o bench/bin/ ./cmd/goinetd ./cmd/goinetd-bench
gcc -O2 -Wall -Wextra -o bench/bin/floor bench/floor.c

# The peers' processes before the run: any other one found after it is ours.
# (pgrep -x matches the kernel's process name, cut to 15 characters.)
# stunnel4 and socat may be run by others too (socat by the test suite):
# only those with goinetd-bench's temporary folder in their command line
# are ours.
peers="inetd xinetd tcpserver tcpsvd systemd-socket- floor stunnel4 socat"
before_run=$(for name in $peers; do pgrep -x "$name" || true; done)

stamp=$(date -u +%Y%m%d-%H%M%S)
report=bench/out/report-$stamp.md
set -- -xinetd "$xinetd" -json "bench/out/report-$stamp.json" "$@"
say "running: bench/bin/goinetd-bench $*"
# Progress goes to standard error as it runs; the report comes at the end.
# goinetd-bench exits non-zero when a connection failed or something was
# left running; it has said what.
status=0
bench/bin/goinetd-bench "$@" >"$report" || status=$?
cat "$report"
say "report: $report (goinetd-bench exit status $status)"

# Nothing of ours may be left. goinetd-bench has checked its own children
# (it is their subreaper); this checks by name once more: a peer process
# that was not there before the run, or a goinetd from bench/bin.
for name in $peers goinetd; do
	for pid in $(pgrep -x "$name" || true); do
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		if [ "$name" = goinetd ]; then
			case $exe in "$PWD"/bench/*) ;; *) continue ;; esac
		elif echo "$before_run" | grep -qx "$pid"; then
			continue
		elif [ "$name" = stunnel4 ] || [ "$name" = socat ]; then
			tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q goinetd-bench- || continue
		fi
		say "left running: $name (pid $pid, $exe)"
		status=1
	done
done
exit "$status"
