# sluice: `make run` starts the embedded gateway, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
CONFIG ?= examples/sluice.toml
ENV_FILE ?= examples/dev.env
DB ?= sluice.db
LISTEN ?= 127.0.0.1:8080

.PHONY: run test unit lint fmt fmt-check moto bench load sink clean build infra-check infra-venv deploy-sam deploy-tf

## Run the embedded gateway on the example config (SQLite in ./sluice.db).
run:
	$(CARGO) run --release -p sluice-cli --bin sluice -- serve --config $(CONFIG) --env-file $(ENV_FILE) --db $(DB) --listen $(LISTEN)

## A destination that prints what it receives (the example config delivers here).
sink:
	python3 examples/sink.py

## Every test: formatting, clippy, unit and integration tests, infrastructure checks.
test: fmt-check lint unit infra-check

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

## The Lambda zips (arm64): target/lambda/<function>/bootstrap.zip. Needs cargo-lambda.
build:
	cargo lambda build --release --arm64 --output-format zip -p sluice-receive -p sluice-enqueue -p sluice-deliver -p sluice-admin

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
deploy-sam: infra-venv
	cd infra/sam && $(SAM) build --beta-features
	cd infra/sam && $(SAM) deploy $(if $(wildcard infra/sam/samconfig.toml),,--guided --capabilities CAPABILITY_IAM)

## Deploy with Terraform: build the zips, then apply the example root.
TF_ROOT ?= infra/terraform/examples/complete
deploy-tf: build
	$(TERRAFORM) -chdir=$(TF_ROOT) init
	$(TERRAFORM) -chdir=$(TF_ROOT) apply

## Criterion bench of the receive hot path.
bench:
	$(CARGO) bench -p sluice --bench receive_path

## Load figure for `sluice serve` (wrk on 127.0.0.1; see README).
load:
	scripts/load.sh

clean:
	$(CARGO) clean
	rm -f $(DB) $(DB)-wal $(DB)-shm
	rm -rf .venv-moto .venv-infra .venv-checkov
