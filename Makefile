# ecrd — build and test entry points. `make test` is the project's one test command:
# it works on a bare Debian machine (it installs what cgo for gousb needs) and is what CI runs.
GO      ?= go
PKGS    := ./...
BIN     := bin/ecrd
VERSION ?= $(shell scripts/version)
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
# The Debian architecture built for: this machine's, or arm64 or armhf, cross-built
# (make deb ARCH=arm64; scripts/build-ecrd, scripts/install-cross).
ARCH    := $(HOST_ARCH)
DEB     := dist/ecrd_$(VERSION)_$(ARCH).deb

.PHONY: all build deps cross-deps test-arm test test-browser vet fmt-check lint bench fuzz soak measure-storage demo clean deb deb-repro lintian test-till test-till-arm64 test-power-cuts

all: build

# gousb links libusb through cgo; a fresh till image or CI machine has neither the headers nor pkg-config.
deps:
	@scripts/install-deps

# ARCH other than this machine's: Debian's cross compiler and libusb-1.0-0-dev of ARCH
# (multiarch), installed when missing.
cross-deps: deps
	@[ "$(ARCH)" = "$(HOST_ARCH)" ] || scripts/install-cross $(ARCH)

build: cross-deps
	DEB_HOST_ARCH=$(ARCH) GO=$(GO) scripts/build-ecrd $(BIN) "$(VERSION)"

vet: deps
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# The browser test (cmd/ecrd/browser_test.go, build tag browser): Debian's headless Chromium
# loads examples/browser-pos/index.html from an allowed and a foreign origin and captures
# through the built daemon's loopback listener (--http-listen). Chromium is installed here when
# missing, so that the test runs wherever make does; it fails, never skips, without it.
test-browser: deps
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	$(GO) vet -tags browser ./cmd/ecrd
	$(GO) test -tags browser -run TestBrowser -count=1 -v -timeout 10m ./cmd/ecrd

# staticcheck with every check, in every build (default, the soak, the crash points), and the
# ten most complex functions (gocyclo; none outside tests should pass 20). Versions pinned so
# that a new release cannot fail a build that did not change.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOCYCLO     ?= github.com/fzipp/gocyclo/cmd/gocyclo@v0.6.0
lint: deps
	$(GO) run $(STATICCHECK) -checks all ./...
	$(GO) run $(STATICCHECK) -checks all -tags soak ./...
	$(GO) run $(STATICCHECK) -checks all -tags crashpoints ./...
	$(GO) run $(STATICCHECK) -checks all -tags measure ./...
	$(GO) run $(STATICCHECK) -checks all -tags browser ./cmd/ecrd
	$(GO) run $(GOCYCLO) -top 10 -ignore '_test' .
	@# A function over 20 outside the tests has no obvious home for the next change: fail.
	$(GO) run $(GOCYCLO) -over 20 -ignore '_test' .

# The metrics against Prometheus' own tool (scripts/promtool: the one on PATH, else unpacked
# from Debian's prometheus package into .cache, no server installed): the alert rules checked
# and their unit tests run (deploy/prometheus), the dashboard's queries parsed
# (deploy/grafana), and promtool's linter over a scrape of the metrics handler with every
# family on it (monitor's TestMetricsScrapeFile).
.PHONY: check-metrics
check-metrics:
	scripts/promtool check rules deploy/prometheus/ecrd-alerts.yml
	cd deploy/prometheus && ../../scripts/promtool test rules ecrd-alerts.test.yml
	@mkdir -p .cache
	ECRD_METRICS_SCRAPE=$(CURDIR)/.cache/metrics.txt ECRD_DASHBOARD_RULES=$(CURDIR)/.cache/dashboard-rules.yml \
		$(GO) test -count=1 -run '^(TestMetricsScrapeFile|TestDashboardQueriesFile|TestDeployFilesNameExportedMetrics)$$' ./monitor
	scripts/promtool check rules .cache/dashboard-rules.yml
	scripts/promtool check metrics < .cache/metrics.txt && echo "promtool check metrics: no problems"

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The soak (cmd/ecrd/soak_test.go, build tag soak): the money guarantees under lost answers,
# secupay faults and random daemon kills for ECRD_SOAK_DURATION (3m), plus the 10,000-capture
# leak test. Minutes long, so not part of `make test`. ECRD_SOAK_SEED repeats a run's plan.
soak: deps fmt-check
	$(GO) vet -tags soak ./cmd/ecrd
	$(GO) test -race -tags soak -run TestSoak -count=1 -v -timeout 30m ./cmd/ecrd

# Storage figures (cmd/ecrd/measure_test.go, build tag measure): a capture with every flush
# delayed 10 ms against a bare start/cash, and start-up and memory with 100,000 past
# captures. They report min/median/max; they assert nothing about time.
measure-storage: deps
	$(GO) vet -tags measure ./cmd/ecrd
	$(GO) test -tags measure -run TestMeasure -count=1 -v -timeout 30m ./cmd/ecrd

# Short fuzz runs of every fuzz target (FuzzDecode, FuzzRender, FuzzDecodeTransaction,
# FuzzAPIRequest, FuzzReplay, ...), FUZZTIME each. The targets are found by name, so a new one
# cannot be left out; CI runs their seed corpora through `make test` already.
FUZZTIME ?= 30s
fuzz: deps
	@targets=$$(grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . | sed 's|/[^/]*_test.go:func | |' | sort); \
	[ -n "$$targets" ] || { echo "no fuzz targets found"; exit 1; }; \
	echo "$$targets" | while read pkg fn; do \
		echo "$(GO) test -run '^$$' -fuzz '^$$fn$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

demo: build
	$(BIN) demo

# The Debian package: binary, units, udev rule, env file (conffile), man page; see packaging/deb.
# ARCH=arm64 or ARCH=armhf: cross-built with cgo (dist/ecrd_VERSION_arm64.deb).
deb: cross-deps
	@DEB_HOST_ARCH=$(ARCH) scripts/build-deb.sh "$(VERSION)" dist

# The package is reproducible: HEAD built twice from clean clones in two directories (the
# second with an empty Go build cache) gives the same bytes (scripts/deb-repro.sh).
deb-repro: cross-deps
	@DEB_HOST_ARCH=$(ARCH) scripts/deb-repro.sh

# Lintian over the package (installed if missing); findings are printed, errors fail.
lintian: deb
	@command -v lintian >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null; }
	lintian --info --display-info --suppress-tags-from-file packaging/deb/lintian-suppress $(DEB)

# The ARM packages, arm64 and armhf, cross-built and checked (Architecture, Depends against
# dpkg-shlibdeps, the binary's ELF), and `ecrd demo` of each run under qemu-user: the whole
# flow, one capture, its receipt printed to a file (scripts/test-arm.sh). ARM_ARCHES="arm64"
# runs one.
test-arm: deps
	scripts/test-arm.sh

# The till test bed: the .deb installed and driven on Debian 12 and 13 under QEMU, with a USB
# printer gadget and a fake secupay in the guest. Not part of `make test` (minutes, not seconds).
# TILL_RELEASES="bookworm" runs one release.
test-till: deps
	scripts/till/test-till.sh

# The arm64 package on an emulated ARM till: Debian 12 arm64 (its own kernel) under
# qemu-system-aarch64 with TCG, the cross-built .deb installed by apt, captures printed over
# lp: and libusb on the same USB printer gadget; a shorter scenario list than test-till's
# (TILL_PHASES="main after-cut" for the whole one). Image cached in .cache/till/bookworm-arm64.
test-till-arm64: deps
	scripts/install-cross arm64
	TILL_ARCH=arm64 scripts/till/test-till.sh

# The power-cut suite of the test bed: QEMU killed at each of ecrd's write points (the
# crash-point build holding there, the kernel writing nothing back on its own) and the same
# disk booted again; every boot checks the cut before it. Debian 13 only unless TILL_RELEASES
# says otherwise; POWER_CUT_POINTS="after-print before-kick" runs some points.
test-power-cuts: deps
	scripts/till/power-cuts.sh

clean:
	rm -rf bin dist
