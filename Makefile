# goinetd: the two commands are `make run` (build, then serve inetd.toml on
# unprivileged loopback ports) and `make test` (every test, with the tools
# the tests use installed first).

GO      ?= go
# A source tarball (make dist) has no git history: its VERSION file says.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || cat VERSION 2>/dev/null || echo dev)
# EXTRA_LDFLAGS: the packages strip the binaries (-s -w), as Debian wants.
LDFLAGS := -X main.version=$(VERSION) $(EXTRA_LDFLAGS)

.PHONY: build run test stress bench bench-tls deps lint

# Where build puts the binaries; the packages build each architecture's
# (GOARCH=arm64 in the environment cross-builds) into a folder of its own.
BUILD_DIR ?= bin

## build: goinetd and the bundled handlers into bin/, statically linked
## (no cgo), so the same file runs on any Linux of its architecture
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BUILD_DIR)/ ./cmd/goinetd ./services/echo ./services/lastaccess
	@# lastaccess with the PostgreSQL driver, which lastaccess runs for a
	@# -db naming a database (the driver would slow every file update)
	CGO_ENABLED=0 $(GO) build -tags postgres -ldflags '$(LDFLAGS)' -o $(BUILD_DIR)/lastaccess-postgres ./services/lastaccess

## run: build, then serve inetd.toml in the foreground (Ctrl-C stops it)
run: build
	bin/goinetd -config inetd.toml

## test: gofmt, go vet, then every test with the race detector (which also
## turns on spawner's run-time checks of its rules); then the end-to-end
## suite again with every handler started through Go's syscall.ForkExec
## (GOINETD_SPAWN=forkexec), without the race detector, which the first
## run covers: a minute more; then, alone, as it steps the machine's wall
## clock (20 s forward and back, root only), the test that denials and
## rate pauses ignore such steps
test: deps lint
	$(GO) test -race -count=1 -timeout 15m ./...
	GOINETD_SPAWN=forkexec $(GO) test -count=1 -timeout 10m ./cmd/goinetd/
	GOINETD_CLOCK_STEP=1 $(GO) test -count=1 -timeout 1m -run TestWallClockStep ./cmd/goinetd/
	$(MAKE) --no-print-directory test-packages

## stress: the fault-injection, flood and soak suite, without the race
## detector; GOINETD_STRESS_SCALE=10 makes it ten times bigger (the
## 1,000,000-connection soak). It prints one FIGURE line per measurement.
stress: deps
	@log=$$(mktemp); \
	$(GO) test -tags stress -run Stress -count=1 -timeout 30m -v ./cmd/goinetd/ >"$$log" 2>&1; status=$$?; \
	grep -h -e FIGURE -e '^--- ' -e '^    [a-z_]*_test.go:[0-9]*: ' -e '^ok' -e '^FAIL' "$$log"; \
	[ $$status = 0 ] || tail -50 "$$log"; rm -f "$$log"; exit $$status

## bench: install the peers, build, and compare goinetd with them side by
## side (about 12 minutes; see bench/README.md)
bench:
	bench/run.sh

## bench-tls: install stunnel4 and socat, build, and compare goinetd's TLS
## termination with theirs side by side (about 5 minutes; see bench/README.md)
bench-tls:
	bench/run.sh -tls

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags stress ./...
	$(GO) vet -tags packagetest ./cmd/goinetd/
	$(GO) vet -tags goinetd_debug ./...
	$(GO) vet -tags postgres ./services/lastaccess/

# Debian packages of the real clients the tests drive: command=package.
# PostgreSQL's binaries are off PATH, in a folder named after its version:
# any initdb installed, or a path that is missing if there is none.
PG_INITDB  := $(or $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin/initdb))),/usr/lib/postgresql/VERSION/bin/initdb)
TEST_TOOLS := prlimit=util-linux setpriv=util-linux setcap=libcap2-bin socat=socat nc=netcat-openbsd python3=python3 /lib/systemd/systemd-socket-proxyd=systemd haproxy=haproxy groff=groff-base man=man-db git=git $(PG_INITDB)=postgresql
# The TLS tests' other clients: OpenSSL's s_client and curl (Python's ssl is python3's).
TEST_TOOLS += openssl=openssl curl=curl
# The package tests' (test-packages): lintian on the .deb, rpm -qlp on the .rpm.
TEST_TOOLS += lintian=lintian rpm=rpm

## deps: install the test tools that are missing (needs root and apt-get;
## otherwise it says what is missing and the tests that need it skip)
deps:
	@missing=""; for pair in $(TEST_TOOLS); do \
		command -v $${pair%%=*} >/dev/null 2>&1 || missing="$$missing $${pair#*=}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing test tools (tests that need them will skip):$$missing"; \
	fi

# ---------------------------------------------------------------------------
# install, uninstall: the GNU layout, staged under DESTDIR when it is set.
#   make install [DESTDIR=/tmp/stage] [PREFIX=/usr/local]
# Works as any user into a DESTDIR; into / it needs root. Running it again
# refreshes the binaries, units and man pages, and never touches an existing
# config, drop-in folder or state folder.

PREFIX         = /usr/local
SBINDIR        = $(PREFIX)/sbin
LIBEXECDIR     = $(PREFIX)/libexec
SYSCONFDIR     = /etc
LOCALSTATEDIR  = /var
MANDIR         = $(PREFIX)/share/man
SYSTEMDUNITDIR = $(PREFIX)/lib/systemd/system
INSTALL       ?= install

# The user the installed config runs the handlers as. An install as root
# into this system (no DESTDIR, the system's /etc and /var) creates the
# system user goinetd for them, and gives it the state folder; any other
# install names nobody and chowns nothing: a package creates its user and
# sets the owner of $(STATEDIR) itself (HANDLER_USER=goinetd names it).
SYSTEM_INSTALL := $(if $(DESTDIR),,$(if $(filter /etc,$(SYSCONFDIR)),$(if $(filter /var,$(LOCALSTATEDIR)),$(if $(filter 0,$(shell id -u)),yes))))
HANDLER_USER   ?= $(if $(SYSTEM_INSTALL),goinetd,nobody)

HANDLERS       := echo lastaccess lastaccess-postgres
UNITS          := goinetd.service goinetd.socket
HANDLERDIR      = $(LIBEXECDIR)/goinetd
CONFDIR         = $(SYSCONFDIR)/goinetd
STATEDIR        = $(LOCALSTATEDIR)/lib/goinetd

# Units and man pages, as SOURCE=DESTINATION: the sources name the default
# paths, and INSTALL_PATHS rewrites them to the real ones.
WITH_PATHS = $(foreach u,$(UNITS),examples/$(u)=$(SYSTEMDUNITDIR)/$(u)) \
	man/goinetd.8=$(MANDIR)/man8/goinetd.8 \
	man/inetd.toml.5=$(MANDIR)/man5/inetd.toml.5
INSTALL_PATHS = -e 's|/usr/local/sbin/goinetd|$(SBINDIR)/goinetd|g' \
	-e 's|/usr/local/libexec/goinetd|$(HANDLERDIR)|g' \
	-e 's|/etc/goinetd|$(CONFDIR)|g' \
	-e 's|/var/lib/goinetd|$(STATEDIR)|g' \
	-e 's|/usr/local/lib/systemd/system|$(SYSTEMDUNITDIR)|g'

# The config a system install starts from: the shipped inetd.toml's two
# handlers, named by their installed paths, with lastaccess keeping its
# records in the state folder, and the drop-in folder included. It serves
# nothing until the operator enables a service: each is disabled, runs as
# HANDLER_USER, and has its limits written out.
define SYSTEM_CONFIG
# goinetd's config, installed by `make install`, which never overwrites it.
# Every key is described in inetd.toml(5). Check a change before a restart:
#   goinetd check -config $(CONFDIR)/inetd.toml
#
# Apply it to the running goinetd with `systemctl reload goinetd`.
#
# The two bundled handlers, on unprivileged loopback ports. Nothing is
# served until you enable a service: delete its `disabled = true`. Each
# runs as the unprivileged user $(HANDLER_USER), with its limits set here;
# as root, goinetd runs a handler as root unless its service sets user.

# Drop-in files, one per service or package, each holding only
# [services.NAME] tables like the ones below.
include = ["goinetd.d/*.toml"]

[server]
log_format = "text"

[services.echo]
disabled = true
address = "127.0.0.1"
port = 17007
program = "$(HANDLERDIR)/echo"
user = "$(HANDLER_USER)"
env = { GOMAXPROCS = "1" }    # a Go handler living milliseconds starts faster with one P
max_connections = 64          # live connections; past it, clients wait in the backlog
max_per_source = 8            # live connections from one client
timeout = "1m"                # a connection is ended after this long

[services.lastaccess]
disabled = true
address = "127.0.0.1"
port = 17008
program = "$(HANDLERDIR)/lastaccess"
args = ["-db", "$(STATEDIR)/lastaccess.db"]
workdir = "$(STATEDIR)"       # $(HANDLER_USER) must own it: the records are kept there
user = "$(HANDLER_USER)"
env = { GOMAXPROCS = "1" }
max_connections = 16
max_per_source = 4
timeout = "10s"
endef

.PHONY: install uninstall install-sysvinit install-openrc

# An installed goinetd takes $(CONFDIR)/inetd.toml when no -c is given.
install: LDFLAGS += -X main.sysconfdir=$(SYSCONFDIR)

## install: build, then install goinetd, its handlers, units, man pages and,
## if there is none yet, a config
install: export GOINETD_SYSTEM_CONFIG = $(SYSTEM_CONFIG)
install: build
	$(INSTALL) -D -m 0755 $(BUILD_DIR)/goinetd '$(DESTDIR)$(SBINDIR)/goinetd'
	for h in $(HANDLERS); do \
		$(INSTALL) -D -m 0755 $(BUILD_DIR)/$$h '$(DESTDIR)$(HANDLERDIR)/'$$h || exit 1; \
	done
	tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
	for pair in $(WITH_PATHS); do \
		sed $(INSTALL_PATHS) "$${pair%%=*}" >"$$tmp" && \
		$(INSTALL) -D -m 0644 "$$tmp" '$(DESTDIR)'"$${pair#*=}" || exit 1; \
	done
	@# An operator's config, drop-ins and state are theirs: made once, then
	@# left alone, modes and owners included.
	[ -d '$(DESTDIR)$(CONFDIR)/goinetd.d' ] || $(INSTALL) -d -m 0755 '$(DESTDIR)$(CONFDIR)/goinetd.d'
	@if [ -n '$(SYSTEM_INSTALL)' ] && ! getent passwd $(HANDLER_USER) >/dev/null; then \
		command -v useradd >/dev/null || { echo "no useradd: create the system user $(HANDLER_USER), then run make install again"; exit 1; }; \
		echo "useradd --system $(HANDLER_USER)"; \
		useradd --system --user-group --no-create-home --home-dir '$(STATEDIR)' \
			--shell /usr/sbin/nologin --comment 'goinetd handlers' $(HANDLER_USER); \
	fi
	[ -d '$(DESTDIR)$(STATEDIR)' ] || $(INSTALL) -d -m 0750 \
		$(if $(SYSTEM_INSTALL),-o $(HANDLER_USER) -g "$$(id -gn $(HANDLER_USER))") '$(DESTDIR)$(STATEDIR)'
	@conf='$(DESTDIR)$(CONFDIR)/inetd.toml'; \
	if [ -e "$$conf" ] || [ -L "$$conf" ]; then \
		echo "keeping the existing $$conf"; \
	else \
		tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
		printf '%s\n' "$$GOINETD_SYSTEM_CONFIG" >"$$tmp" && \
		echo "$(INSTALL) -D -m 0644 <config> $$conf" && \
		$(INSTALL) -D -m 0644 "$$tmp" "$$conf"; \
	fi

## uninstall: remove what install put in place, except the config and the
## state (remove $(CONFDIR) and $(STATEDIR) by hand to purge)
uninstall:
	rm -f '$(DESTDIR)$(SBINDIR)/goinetd' \
		$(foreach h,$(HANDLERS),'$(DESTDIR)$(HANDLERDIR)/$(h)') \
		$(foreach p,$(WITH_PATHS),'$(DESTDIR)$(lastword $(subst =, ,$(p)))')
	rmdir '$(DESTDIR)$(HANDLERDIR)' 2>/dev/null || true

# The init scripts for hosts without systemd, each installed as
# $(SYSCONFDIR)/init.d/goinetd with the same paths as the units; neither is
# part of install, and neither is enabled (see the top of each script).
INITDIR = $(SYSCONFDIR)/init.d

## install-sysvinit: the sysvinit (LSB) script, for Debian and Devuan
## without systemd; install-openrc: the OpenRC one, for Alpine and Gentoo
install-sysvinit: INIT_SCRIPT = examples/goinetd.init
install-openrc: INIT_SCRIPT = examples/goinetd.openrc
install-sysvinit install-openrc:
	tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
	sed $(INSTALL_PATHS) $(INIT_SCRIPT) >"$$tmp" && \
	$(INSTALL) -D -m 0755 "$$tmp" '$(DESTDIR)$(INITDIR)/goinetd'

# ---------------------------------------------------------------------------
# deb, rpm: the packages, for amd64 and arm64, built by nfpm from
# `make install` (and install-sysvinit) staged at the distribution's paths
# for each architecture, with the config's handlers run as the user the
# package creates. See packaging/nfpm.yaml and docs/packaging.md.
#   make deb rpm [PKG_ARCHES=amd64]     -> bin/packages/

NFPM_VERSION   := v2.48.0
NFPM           := bin/tools/nfpm-$(NFPM_VERSION)
PKG_ARCHES     ?= amd64 arm64
PKG_DIR        := bin/pkg
PKG_OUT        := bin/packages
PKG_MAINTAINER ?= goinetd maintainers <maintainers@users.noreply.r-seed-1d0ec6e0.example>
# The version of the packages, and of the goinetd in them: git describe
# made a valid Debian and RPM version (see the script). Computed once.
PKG_VERSION     = $(eval PKG_VERSION := $$(shell packaging/version.sh))$(PKG_VERSION)

.PHONY: deb rpm packages-staged test-packages openrc-tools dist

## test-packages: build the packages, lintian the .debs, compare the .rpm's
## files with the .deb's; as root, install the .deb into this machine, run
## it directly and by its sysvinit script, and purge it; run the OpenRC
## script; build the source tarball of `make dist` offline (two minutes or
## so). `make test` runs it last, on its own: nothing else may run while
## the package is installed.
test-packages: deps openrc-tools
	$(GO) test -tags packagetest -count=1 -timeout 10m -run '^(TestPackage|TestOpenRC|TestDist)' -v ./cmd/goinetd/

## openrc-tools: Debian's openrc, unpacked into bin/tools/openrc, not
## installed (it would take over update-rc.d): the OpenRC script's test
## runs it in a mount namespace. Without apt-get, that test skips.
openrc-tools:
	@[ -x bin/tools/openrc/sbin/openrc-run ] || ! command -v apt-get >/dev/null || { \
		tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		(cd "$$tmp" && apt-get download -qq openrc librc1 libeinfo1 2>/dev/null) && \
		for deb in "$$tmp"/*.deb; do dpkg-deb -x "$$deb" "$$tmp/root" || exit 1; done && \
		mkdir -p bin/tools && rm -rf bin/tools/openrc && mv "$$tmp/root" bin/tools/openrc; \
	} || echo "could not unpack openrc into bin/tools/openrc: the OpenRC test will skip"

## deb, rpm: the packages for $(PKG_ARCHES), in bin/packages/
deb rpm: packages-staged $(NFPM)
	@mkdir -p $(PKG_OUT) && rm -f $(PKG_OUT)/*.$@
	for arch in $(PKG_ARCHES); do \
		PKG_ARCH=$$arch PKG_VERSION='$(PKG_VERSION)' PKG_ROOT=$(PKG_DIR)/$$arch/root \
		PKG_MAINTAINER='$(PKG_MAINTAINER)' SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null) \
			$(NFPM) package --config packaging/nfpm.yaml --packager $@ --target $(PKG_OUT)/ || exit 1; \
	done

# nfpm, pinned, built once into bin/tools/.
$(NFPM):
	@mkdir -p $(@D)
	GOBIN=$(CURDIR)/$(@D) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv $(@D)/nfpm $@

# packages-staged: each architecture's tree in bin/pkg/ARCH/root, as the
# packages lay it out (man pages gzipped, as Debian wants), and the
# changelog nfpm writes into them: this commit's.
packages-staged:
	rm -rf $(PKG_DIR) && mkdir -p $(PKG_DIR)
	for arch in $(PKG_ARCHES); do \
		GOARCH=$$arch $(MAKE) --no-print-directory install install-sysvinit \
			BUILD_DIR=$(PKG_DIR)/$$arch/bin DESTDIR=$(CURDIR)/$(PKG_DIR)/$$arch/root \
			PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system HANDLER_USER=goinetd \
			VERSION='$(PKG_VERSION)' EXTRA_LDFLAGS='-s -w' || exit 1; \
		gzip -9n $(PKG_DIR)/$$arch/root/usr/share/man/man*/* || exit 1; \
	done
	{ echo '- semver: "$(PKG_VERSION)"'; \
	  echo "  date: $$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)"; \
	  echo '  packager: "$(PKG_MAINTAINER)"'; \
	  echo '  deb: {urgency: medium, distributions: [unstable]}'; \
	  echo '  changes:'; \
	  echo "    - note: \"Built from $$(git log -1 --format='git commit %h of %cs' 2>/dev/null || echo 'a source tree without git').\""; \
	} >$(PKG_DIR)/changelog.yml

# ---------------------------------------------------------------------------
# dist: the release tarballs, in dist/, with a SHA256SUMS file:
#   goinetd-VERSION.tar.gz               the source, this tree as it is, with
#                                        vendor/ and a VERSION file, so that
#                                        `make build` works offline
#   goinetd-VERSION-linux-ARCH.tar.gz    the static binaries of the packages,
#                                        man pages, examples (units, init
#                                        scripts, configs), README, SECURITY
DIST_DIR := dist
DIST_DOCS = README.md SECURITY.md $(wildcard LICENSE CHANGELOG.md)

## dist: the source and binary tarballs and SHA256SUMS, in dist/
dist: packages-staged
	rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)
	set -e; v='$(PKG_VERSION)'; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mtime=@$$(git log -1 --format=%ct); \
	pack() { tar -C "$$tmp" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$$mtime" \
		-cf - "$$1" | gzip -9n >$(DIST_DIR)/"$$1".tar.gz; }; \
	src=goinetd-$$v; tree=$$(git stash create); \
	git archive --prefix=$$src/ $${tree:-HEAD} | tar -x -C "$$tmp"; \
	echo "$$v" >"$$tmp/$$src/VERSION"; \
	(cd "$$tmp/$$src" && $(GO) mod vendor); \
	pack $$src; \
	for arch in $(PKG_ARCHES); do \
		b=goinetd-$$v-linux-$$arch; mkdir -p "$$tmp/$$b/handlers" "$$tmp/$$b/man"; \
		cp $(PKG_DIR)/$$arch/bin/goinetd "$$tmp/$$b/"; \
		cp $(foreach h,$(HANDLERS),$(PKG_DIR)/$$arch/bin/$(h)) "$$tmp/$$b/handlers/"; \
		(cd "$$tmp/$$src" && cp man/goinetd.8 man/inetd.toml.5 "$$tmp/$$b/man/" && \
			cp -r examples $(DIST_DOCS) "$$tmp/$$b/"); \
		pack $$b; \
	done; \
	cd $(DIST_DIR) && sha256sum *.tar.gz >SHA256SUMS && cat SHA256SUMS
