# tapstack. `make help` lists the targets.
#
# Go is looked for in /usr/local/go/bin first (where the official tarball
# installs it), then in PATH.

export PATH := /usr/local/go/bin:$(PATH)
# CI=true turns skipped netns tests into failures; pass it through (only
# when set: an empty CI= would still look like "in CI" to some tools).
ifdef CI
export CI
endif

GO ?= go
BIN := bin

# Debian packages the integration tests, the demo and the benchmarks use,
# and one command each provides (checked to decide whether to install).
DEB_PACKAGES := iproute2 iputils-ping tcpdump arping socat iperf3 ndisc6 netcat-openbsd dnsmasq curl
DEB_COMMANDS := ip ping tcpdump arping socat iperf3 ndisc6 nc dnsmasq curl
# Also look where Debian puts them: root's PATH under sudo may lack sbin.
SEARCH_PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin

.PHONY: all help deps build test demo bench bench-go fmt clean

all: build

help:
	@echo 'make deps   install the Debian packages tests and demo need (root; no-op when present)'
	@echo 'make build  build bin/tapstackd and bin/tapadm'
	@echo 'make test   go vet and the race-enabled tests (netns tests need root: sudo make test)'
	@echo 'make demo   run scripts/demo.sh (root)'
	@echo 'make bench  tapstack vs slirp4netns, pasta and veth; table, JSON, PNG in bench-out/ (root)'
	@echo 'make bench-go  every Go benchmark once, then the control-plane ones for 1 s each'
	@echo 'make fmt    gofmt the tree'
	@echo 'make clean  remove build outputs'

# Installs only when a command is missing, and runs apt-get update only
# then. Without root it cannot install: outside CI it warns (the tests
# needing the commands skip), under CI=true it fails.
deps:
	@missing=; \
	for c in $(DEB_COMMANDS); do \
		PATH="$(SEARCH_PATH)" command -v "$$c" >/dev/null 2>&1 || missing="$$missing $$c"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "deps: all present ($(DEB_COMMANDS))"; \
		exit 0; \
	fi; \
	echo "deps: missing:$$missing"; \
	if [ "$$(id -u)" -ne 0 ]; then \
		if [ "$$CI" = true ]; then \
			echo "deps: not root, cannot install; run as root (sudo make deps)" >&2; \
			exit 1; \
		fi; \
		echo "deps: not root, not installing; run: sudo make deps" >&2; \
		exit 0; \
	fi; \
	set -e; \
	apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PACKAGES)

build:
	$(GO) build -o $(BIN)/ ./cmd/tapstackd ./cmd/tapadm

# The allocation budgets (Test*Allocs*) skip under -race, where sync.Pool
# drops items at random; the last line runs them without it.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 14m ./...
	$(GO) test -count=1 -run Allocs ./link/...

demo: deps build
	bash scripts/demo.sh

# scripts/bench: tapstack against slirp4netns, pasta and veth (root;
# BENCH_TIME=seconds per iperf3 run, default 5; BENCH_REPEAT=N rounds over
# all configurations, each figure their median; results in bench-out/).
# gnuplot draws the chart; it is installed when missing.
bench: deps build
	@PATH="$(SEARCH_PATH)"; for c in slirp4netns pasta gnuplot; do \
		command -v $$c >/dev/null 2>&1 && continue; \
		case $$c in gnuplot) p=gnuplot-nox;; pasta) p=passt;; *) p=$$c;; esac; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y $$p || exit 1; \
	done
	$(GO) build -o $(BIN)/bench ./scripts/bench
	$(BIN)/bench -o bench-out

# Every Go benchmark once, no tests; then the control-plane benchmarks
# (README, Benchmarks, Control plane) for a second each, long enough for
# their rates to mean something.
CONTROL_BENCH := '^Benchmark(Lookup|TableBuild|Requests|GLIFCONF|PlumbUp|SocketRequests)$$'
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
	$(GO) test -run '^$$' -bench $(CONTROL_BENCH) -benchtime 1s ./route ./ifmgr ./internal/daemon

fmt:
	find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -exec gofmt -s -w {} +

clean:
	rm -rf $(BIN) coverage.out bench-out
