#!/usr/bin/env bash
# Build the virtualenv real Keystone runs in for the keystone test tier
# (tests/keystone_support.py): keystone at a pinned version from PyPI.
# Keystone's pins (oslo.*, SQLAlchemy, Flask) need not agree with
# Mistral's: this venv is not the project's, and the two talk over HTTP
# only.  Nothing of instance-ha is installed into it, and instance-ha never
# imports Keystone.
#
# Usage: tools/keystone-venv.sh [DIR]   (default: $KEYSTONE_VENV or .keystone)
# Idempotent: DIR/.keystone-built records what was installed; a second run
# with the same pins does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DIR=${1:-${KEYSTONE_VENV:-.keystone}}
# The project's constraints (tox sets PIP_CONSTRAINT) are for its own venv.
unset PIP_CONSTRAINT

KEYSTONE_PINS=(keystone==30.0.0)
MARKER="$DIR/.keystone-built"
WANT="python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ${KEYSTONE_PINS[*]}"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] \
    && [ -x "$DIR/bin/python" ]; then
  exit 0
fi

start=$(date +%s)
quiet() { grep -v -e '^WARNING: Location' -e '^\s*$' || true; }
rm -f "$MARKER"
if [ ! -x "$DIR/bin/python" ]; then
  "$PYTHON" -m venv "$DIR"
fi
"$DIR/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
"$DIR/bin/python" -m pip install -q "${KEYSTONE_PINS[@]}" 2>&1 | quiet
# The harness's own check: the WSGI app and keystone-manage import.
"$DIR/bin/python" -W ignore -c \
  'import keystone.server.wsgi, keystone.cmd.manage' >/dev/null 2>&1 || {
  echo "keystone-venv: $DIR cannot import Keystone" >&2
  "$DIR/bin/python" -W ignore -c 'import keystone.server.wsgi' 2>&1 \
    | tail -5 >&2
  exit 1
}
[ -x "$DIR/bin/keystone-manage" ] || {
  echo "keystone-venv: $DIR has no keystone-manage" >&2
  exit 1
}
echo "$WANT" > "$MARKER"
echo "keystone-venv: $DIR built in $(( $(date +%s) - start )) s" \
  "(${KEYSTONE_PINS[*]})"
