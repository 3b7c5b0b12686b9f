#!/usr/bin/env bash
# README's first command: set up this machine and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-machine.sh server
exec .venv/bin/instance-ha demo "$@"
