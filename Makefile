# ecrd — build and test entry points. `make test` is the project's one test command:
# it works on a bare Debian machine (it installs what cgo for gousb needs) and is what CI runs.
GO      ?= go
PKGS    := ./...
BIN     := bin/ecrd
VERSION ?= $(shell scripts/version)
ARCH    := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB     := dist/ecrd_$(VERSION)_$(ARCH).deb

.PHONY: all build deps test vet fmt-check bench fuzz demo clean deb lintian test-till

all: build

# gousb links libusb through cgo; a fresh till image or CI machine has neither the headers nor pkg-config.
deps:
	@scripts/install-deps

build: deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/ecrd

vet: deps
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Short fuzz runs of every fuzz target; CI runs the seed corpora through `make test` already.
fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzRender -fuzztime 30s ./receipt
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./receipt

demo: build
	$(BIN) demo

# The Debian package: binary, units, udev rule, env file (conffile), man page; see packaging/deb.
deb: deps
	@scripts/build-deb.sh "$(VERSION)" dist

# Lintian over the package (installed if missing); findings are printed, errors fail.
lintian: deb
	@command -v lintian >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null; }
	lintian --info --display-info --suppress-tags-from-file packaging/deb/lintian-suppress $(DEB)

# The till test bed: the .deb installed and driven on Debian 12 and 13 under QEMU, with a USB
# printer gadget and a fake secupay in the guest. Not part of `make test` (minutes, not seconds).
# TILL_RELEASES="bookworm" runs one release.
test-till: deps
	scripts/till/test-till.sh

clean:
	rm -rf bin dist
