# nudge: common tasks. The CI runs .ci/run (the README's test command).

GO        ?= go
FUZZTIME  ?= 60s
BENCHTIME ?= 1s

.PHONY: all build test test-short bench bench-ingest fuzz vet fmt clean

all: vet test

build:
	$(GO) build -o bin/nudge ./cmd/nudge

# The README's test command (what .ci/run runs): installs Chromium for the browser tests when
# it can, then the race-enabled suite and the slow quality test.
test:
	./test.sh

test-short:
	$(GO) test -short -timeout 10m ./...

# Every Go benchmark, then the ingestion benchmark command (HTTP vs raw Badger).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	$(MAKE) bench-ingest

bench-ingest:
	$(GO) run ./cmd/nudge bench ingest --events 1000000 --batch 100 --concurrency 16

# Fuzz the event decoder and validation; the corpus lives in data/wire/testdata/fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime $(FUZZTIME) ./data/wire

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)

fmt:
	gofmt -w .

clean:
	rm -rf bin
