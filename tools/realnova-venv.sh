#!/usr/bin/env bash
# Build the virtualenv the real-Nova test harness runs in
# (tests/realnova/nova_server.py): nova and openstack-placement at pinned
# versions, with the test-only modules Nova's functional-test fixtures import
# installed beside it (DIR/testdeps, --no-deps) so that they cannot move
# Nova's own pins.  Nova's pins (oslo.*, SQLAlchemy) need not agree with
# Mistral's: this venv is not the project's, and the two talk over HTTP only.
#
# Usage: tools/realnova-venv.sh [DIR]   (default: $REALNOVA_VENV or .realnova)
# Idempotent: DIR/.realnova-built records what was installed; a second run
# with the same pins does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DIR=${1:-${REALNOVA_VENV:-.realnova}}
# The project's constraints (tox sets PIP_CONSTRAINT) are for its own venv.
unset PIP_CONSTRAINT

NOVA_PINS=(nova==34.0.0 openstack-placement==16.0.0)
# Imported by nova.test, nova.tests.fixtures and placement's fixtures but
# not dependencies of the nova wheel.  Their own dependencies (fixtures,
# six, requests) come with Nova.
TEST_PINS=(testtools==2.9.1 oslotest==6.1.1 wsgi-intercept==1.13.1
           requests-mock==1.12.1)
MARKER="$DIR/.realnova-built"
WANT="python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ${NOVA_PINS[*]} ${TEST_PINS[*]}"

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
"$DIR/bin/python" -m pip install -q "${NOVA_PINS[@]}" 2>&1 | quiet
"$DIR/bin/python" -m pip install -q --no-deps --upgrade \
  --target "$DIR/testdeps" "${TEST_PINS[@]}" 2>&1 | quiet
# The harness's own check that everything it imports is there.
PYTHONPATH="$DIR/testdeps" "$DIR/bin/python" -W ignore -c \
  'import nova.tests.functional.integrated_helpers, wsgi_intercept' \
  >/dev/null 2>&1 || {
  echo "realnova-venv: $DIR cannot import Nova's functional-test helpers" >&2
  PYTHONPATH="$DIR/testdeps" "$DIR/bin/python" -W ignore -c \
    'import nova.tests.functional.integrated_helpers' 2>&1 | tail -5 >&2
  exit 1
}
echo "$WANT" > "$MARKER"
echo "realnova-venv: $DIR built in $(( $(date +%s) - start )) s" \
  "(${NOVA_PINS[*]})"
