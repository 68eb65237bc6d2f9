#!/usr/bin/env bash
# Install cargo-lambda and zig into .venv-lambda at the repository root
# (idempotent), and the Rust target for arm64 when it is missing.
#
#   scripts/lambda-venv.sh     create/refresh the venv if needed, print its
#                              bin directory (put it first on PATH: `cargo
#                              lambda` is then .venv-lambda/bin/cargo-lambda,
#                              and cargo-zigbuild finds zig through the
#                              venv's python as `python3 -m ziglang`)
#
# The venv is rebuilt only when scripts/requirements-lambda.txt changed since
# the last install, so a second run takes well under a second.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SLUICE_LAMBDA_VENV:-$root/.venv-lambda}"
req="$root/scripts/requirements-lambda.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"
target=aarch64-unknown-linux-gnu

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "lambda-venv.sh: rustup target add $target" >&2
    rustup target add "$target" >&2
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/cargo-lambda" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin"
    exit 0
fi

echo "lambda-venv.sh: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
rm -f "$stamp"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
"$venv/bin/cargo-lambda" lambda --version >/dev/null
"$venv/bin/python" -m ziglang version >/dev/null
echo "$want" >"$stamp"
echo "$venv/bin"
