# sluice: `make run` starts the embedded gateway, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= examples/sluice.toml
ENV_FILE ?= examples/dev.env
DB ?= sluice.db
LISTEN ?= 127.0.0.1:8080

.PHONY: run test unit lean-check lint fmt fmt-check moto oracle chromium screenshots bench fuzz load faults sink clean build lambda-venv watch watch-events watch-deliveries infra-check infra-venv deploy-sam deploy-tf

## Run the embedded gateway on the example config (SQLite in ./sluice.db).
run:
	$(CARGO) run --release -p sluice-cli --bin sluice -- serve --config $(CONFIG) --env-file $(ENV_FILE) --db $(DB) --listen $(LISTEN)

## A destination that prints what it receives (the example config delivers here).
sink:
	python3 examples/sink.py

## Every test: formatting, clippy, unit and integration tests, infrastructure checks.
test: fmt-check lint unit lean-check infra-check

unit: moto oracle chromium
	$(CARGO) test --workspace --all-targets --all-features

## moto server (DynamoDB, Streams, SQS, SSM) in .venv-moto, for the AWS tests.
moto:
	@scripts/moto.sh >/dev/null

## Debian's chromium and chromium-driver, for the console's browser test.
chromium:
	@scripts/chromium.sh >/dev/null

## Refresh docs/img/console-*.png (the README's) from that browser test.
screenshots: chromium
	SLUICE_UPDATE_SCREENSHOTS=1 $(CARGO) test -p sluice-tests --test console

## The providers' webhook libraries (pinned in tests/requirements-oracle.txt)
## in .venv-oracle: the oracle shared/tests/oracle.rs checks verification against.
oracle:
	@scripts/oracle-venv.sh >/dev/null

## The embedded gateway as `make run` builds it (the CLI without its `aws`
## feature): clippy-clean, and no AWS SDK in its dependency graph.
lean-check:
	$(CARGO) clippy -p sluice-cli --bin sluice -- -D warnings
	@if $(CARGO) tree -p sluice-cli -e normal --prefix none | grep -E '^aws-(sdk-|config |smithy-)'; then \
	  echo "lean-check: sluice-cli pulls the AWS SDK (above) without --features aws" >&2; exit 1; fi

lint:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## cargo-lambda and zig in .venv-lambda (and the arm64 Rust target).
LAMBDA_BIN = $(CURDIR)/.venv-lambda/bin
lambda-venv:
	@scripts/lambda-venv.sh >/dev/null

## The Lambda zips (arm64): target/lambda/<function>/bootstrap.zip, built
## with the `lambda-small` profile of Cargo.toml (see docs/ARCHITECTURE.md).
LAMBDAS := -p sluice-receive -p sluice-enqueue -p sluice-deliver -p sluice-admin -p sluice-poll
build: lambda-venv
	PATH="$(LAMBDA_BIN):$$PATH" $(CARGO) lambda build --profile lambda-small --arm64 --output-format zip $(LAMBDAS)
	@ls -l target/lambda/*/bootstrap.zip

## The functions (receive, enqueue, deliver, admin, poll) under `cargo
## lambda watch` (127.0.0.1:9000) against a moto server holding the tables,
## queues and an example config; see README "On AWS". Ctrl-C stops both.
watch: lambda-venv moto
	scripts/watch.sh

## While `make watch` runs: what the events / deliveries tables hold.
watch-events:
	@scripts/watch-aws.sh events
watch-deliveries:
	@scripts/watch-aws.sh deliveries

## Offline checks of infra/: terraform fmt, sam validate --lint, cfn-lint,
## checkov on both templates, and the parity test (templates vs code).
## Fake credentials and a region: nothing here calls AWS, and terraform,
## sam and checkov are told not to phone home (checked with strace in a
## network namespace: no connection attempt).
INFRA_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_EC2_METADATA_DISABLED=true \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR=$(CURDIR)/.venv-infra/sam-app-dir \
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE CHECKPOINT_DISABLE=1 \
	TF_CLI_CONFIG_FILE=/dev/null
CHECKOV_FLAGS := --quiet --compact --skip-download
TERRAFORM ?= terraform

infra-check: infra-venv
	@echo "terraform fmt"; env $(INFRA_ENV) $(TERRAFORM) fmt -check -recursive infra/terraform
	@echo "sam validate --lint"; env $(INFRA_ENV) .venv-infra/bin/sam validate --lint --template infra/sam/template.yaml
	@echo "cfn-lint"; env $(INFRA_ENV) .venv-infra/bin/cfn-lint infra/sam/template.yaml
	@echo "checkov (terraform)"; env $(INFRA_ENV) .venv-checkov/bin/checkov $(CHECKOV_FLAGS) --framework terraform -d infra/terraform
	@echo "checkov (cloudformation)"; env $(INFRA_ENV) .venv-checkov/bin/checkov $(CHECKOV_FLAGS) --framework cloudformation -f infra/sam/template.yaml
	@echo "parity"; env $(INFRA_ENV) .venv-infra/bin/python -m pytest -q --tb=short -p no:cacheprovider infra/tests

## aws-sam-cli, cfn-lint, pytest… in .venv-infra; checkov in .venv-checkov.
infra-venv:
	@scripts/infra-venv.sh infra >/dev/null
	@scripts/infra-venv.sh checkov >/dev/null

## Deploy with SAM (needs cargo-lambda and AWS credentials). The first run is
## guided and saves infra/sam/samconfig.toml; later runs reuse it.
SAM ?= $(CURDIR)/.venv-infra/bin/sam
# sam build runs `cargo lambda build --release`: the variables give it the
# settings of Cargo.toml's [profile.lambda-small] (cargo-lambda adds panic=abort).
SAM_BUILD_ENV := CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 PATH="$(LAMBDA_BIN):$$PATH"
deploy-sam: infra-venv lambda-venv
	cd infra/sam && env $(SAM_BUILD_ENV) $(SAM) build --beta-features
	cd infra/sam && $(SAM) deploy $(if $(wildcard infra/sam/samconfig.toml),,--guided --capabilities CAPABILITY_IAM)

## Deploy with Terraform: build the zips, then apply the example root.
TF_ROOT ?= infra/terraform/examples/complete
deploy-tf: build
	$(TERRAFORM) -chdir=$(TF_ROOT) init
	$(TERRAFORM) -chdir=$(TF_ROOT) apply

## Criterion benches: the receive hot path, and routing over 100 subscriptions.
## BENCH_FILTER runs only the benches whose id matches (criterion's filter).
BENCH_FILTER ?=
bench:
	$(CARGO) bench -p sluice --bench receive_path --bench routing -- $(BENCH_FILTER)

## cargo-fuzz targets of fuzz/ (not part of `make test`; nightly): each
## for FUZZ_SECS seconds or FUZZ_RUNS executions (0: no limit), one job,
## niced; prints executions and crashes per target (scripts/fuzz.sh).
FUZZ_SECS ?= 300
FUZZ_RUNS ?= 0
fuzz:
	FUZZ_SECS=$(FUZZ_SECS) FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz.sh

## Load figure for `sluice serve` (wrk on 127.0.0.1; see README).
load:
	scripts/load.sh

## Fault injection under load (not part of `make test`): kill -9, then
## SIGTERM, the gateway 5 times each while wrk runs; counts lost and
## duplicated deliveries (see README "Performance").
faults:
	scripts/faults.sh

clean:
	$(CARGO) clean
	rm -f $(DB) $(DB)-wal $(DB)-shm
	rm -rf .venv-moto .venv-infra .venv-checkov .venv-lambda .venv-oracle
