#!/usr/bin/env bash
# Install moto server into .venv-moto at the repository root (idempotent).
#
#   scripts/moto.sh            create/refresh the venv if needed, print the
#                              path of moto_server
#
# The Rust tests (sluice::aws::testing::MotoServer) look for
# .venv-moto/bin/moto_server beside the workspace, or for the binary named by
# SLUICE_MOTO_SERVER. The venv is rebuilt only when the requirements file
# changed since the last install, so a second run takes well under a second.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SLUICE_MOTO_VENV:-$root/.venv-moto}"
req="$root/tests/requirements-moto.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/moto_server"
    exit 0
fi

echo "moto.sh: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
"$venv/bin/moto_server" --help >/dev/null
echo "$want" >"$stamp"
echo "$venv/bin/moto_server"
