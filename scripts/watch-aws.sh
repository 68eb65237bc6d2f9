#!/usr/bin/env bash
# scripts/watch_aws.py with the moto venv's python, against the moto server
# of a running `make watch` (SLUICE_WATCH_MOTO_PORT, default 5050):
#
#   scripts/watch-aws.sh events | deliveries | stream | queue
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AWS_ENDPOINT_URL="http://127.0.0.1:${SLUICE_WATCH_MOTO_PORT:-5050}"
exec "$root/.venv-moto/bin/python" "$root/scripts/watch_aws.py" "$@"
