#!/usr/bin/env bash
# README's second command: set up this machine and run every test
# (every tox environment but bench, which measures rather than tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-machine.sh test
.venv/bin/python -m pip install -q 'tox>=4,<5' 2>&1 | grep -v '^WARNING: Location' || true
exec .venv/bin/tox -e "${TOX_ENVS:-pep8,py3,functional,realnova,keystone,dashboard,e2e,chaos}" "$@"
