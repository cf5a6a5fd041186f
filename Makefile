# goinetd: the two commands are `make run` (build, then serve inetd.toml on
# unprivileged loopback ports) and `make test` (every test, with the tools
# the tests use installed first).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test deps lint

## build: goinetd and the bundled handlers into bin/
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/goinetd ./services/echo ./services/lastaccess

## run: build, then serve inetd.toml in the foreground (Ctrl-C stops it)
run: build
	bin/goinetd -config inetd.toml

## test: gofmt, go vet, then every test with the race detector
test: deps lint
	$(GO) test -race -count=1 -timeout 15m ./...

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Debian packages of the real clients the tests drive: command=package.
TEST_TOOLS := socat=socat nc=netcat-openbsd python3=python3 /lib/systemd/systemd-socket-proxyd=systemd

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
