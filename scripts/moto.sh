#!/usr/bin/env bash
# Install moto server into .venv-moto at the repository root (idempotent).
#
#   scripts/moto.sh            create/refresh the venv if needed, print the
#                              path of the server to run
#
# The server is .venv-moto/bin/sluice-moto-server: moto_server with its
# DynamoDB backend serialised (scripts/moto_atomic.py says why). The Rust
# tests (sluice::aws::testing::MotoServer) and `make watch` run it; the tests
# take SLUICE_MOTO_SERVER instead when it is set. The venv is rebuilt only
# when the requirements file changed since the last install, so a second run
# takes well under a second.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SLUICE_MOTO_VENV:-$root/.venv-moto}"
req="$root/tests/requirements-moto.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

server="$venv/bin/sluice-moto-server"
# The launcher: written each time, so it follows the checkout it runs from.
write_server() {
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$venv/bin/python" "$root/scripts/moto_atomic.py" >"$server"
    chmod +x "$server"
}

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    write_server
    echo "$server"
    exit 0
fi

echo "moto.sh: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
write_server
"$server" --help >/dev/null
echo "$want" >"$stamp"
echo "$server"
