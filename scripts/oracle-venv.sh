#!/usr/bin/env bash
# Install the providers' webhook libraries into .venv-oracle at the
# repository root (idempotent): the oracle that shared/tests/oracle.rs checks
# sluice's signature verification against (tests/oracle/oracle.py).
#
#   scripts/oracle-venv.sh     create/refresh the venv if needed, print the
#                              path of its python
#
# The venv is rebuilt only when tests/requirements-oracle.txt changed since
# the last install, so a second run takes well under a second. The test
# reads SLUICE_ORACLE_PYTHON instead of .venv-oracle/bin/python when set.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SLUICE_ORACLE_VENV:-$root/.venv-oracle}"
req="$root/tests/requirements-oracle.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

echo "oracle-venv.sh: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
# A partial install must not look complete: the stamp comes last.
rm -f "$stamp"
"$venv/bin/python" -c 'import standardwebhooks, stripe, slack_sdk, sendgrid, nacl, paddle_billing, twilio, githubkit' >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
