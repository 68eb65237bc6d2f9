#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver if either is missing
# (idempotent): the console's browser tests (tests/tests/console.rs) drive
# headless Chromium through chromedriver.
#
#   scripts/chromium.sh        install if needed, print the chromedriver path
#
# The tests take SLUICE_CHROMEDRIVER and SLUICE_CHROMIUM instead when set.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have chromium || ! have chromedriver; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "chromium.sh: chromium and chromium-driver are missing; install them as root:" >&2
        echo "    apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
    echo "chromium.sh: installing chromium and chromium-driver" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
fi
command -v chromedriver
