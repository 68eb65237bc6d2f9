# sluice: `make run` starts the embedded gateway, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= examples/sluice.toml
ENV_FILE ?= examples/dev.env
DB ?= sluice.db
LISTEN ?= 127.0.0.1:8080

.PHONY: run test unit lint fmt fmt-check moto bench load sink clean

## Run the embedded gateway on the example config (SQLite in ./sluice.db).
run:
	$(CARGO) run --release -p sluice-cli --bin sluice -- serve --config $(CONFIG) --env-file $(ENV_FILE) --db $(DB) --listen $(LISTEN)

## A destination that prints what it receives (the example config delivers here).
sink:
	python3 examples/sink.py

## Every test: formatting, clippy, unit and integration tests.
test: fmt-check lint unit

unit: moto
	$(CARGO) test --workspace --all-targets --all-features

## moto server (DynamoDB, Streams, SQS, SSM) in .venv-moto, for the AWS tests.
moto:
	@scripts/moto.sh >/dev/null

lint:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## Criterion bench of the receive hot path.
bench:
	$(CARGO) bench -p sluice --bench receive_path

## Load figure for `sluice serve` (wrk on 127.0.0.1; see README).
load:
	scripts/load.sh

clean:
	$(CARGO) clean
	rm -f $(DB) $(DB)-wal $(DB)-shm
	rm -rf .venv-moto
