# ecrd — build and test entry points. `make test` is the project's one test command:
# it works on a bare Debian machine (it installs what cgo for gousb needs) and is what CI runs.
GO      ?= go
PKGS    := ./...
BIN     := bin/ecrd

.PHONY: all build deps test vet fmt-check bench fuzz soak measure-storage demo clean

all: build

# gousb links libusb through cgo; a fresh till image or CI machine has neither the headers nor pkg-config.
deps:
	@scripts/install-deps

build: deps
	$(GO) build -o $(BIN) ./cmd/ecrd

vet: deps
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

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

# Short fuzz runs of every fuzz target; CI runs the seed corpora through `make test` already.
fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzRender -fuzztime 30s ./receipt
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./receipt

demo: build
	$(BIN) demo

clean:
	rm -rf bin
