# The two commands of the README:
#   make demo   - the whole story end to end (local Rekor, sign, pacman installs / refuses)
#   make test   - every check CI runs (vet, staticcheck, actionlint, go test -race with the real stack)
SHELL := /bin/bash
GO ?= go

.PHONY: build demo test unit bench fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bintrans ./cmd/bintrans

demo:
	scripts/demo

test:
	scripts/test

# unit: the fast tests only (no stack needed; integration tests skip).
unit:
	$(GO) test ./...

bench:
	scripts/bench

fuzz:
	scripts/fuzz

clean:
	rm -rf bin
