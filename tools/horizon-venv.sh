#!/usr/bin/env bash
# Build the virtualenv the dashboard tier's Horizon runs in
# (tests/dashboard/horizon.py): Horizon 27 and mistral-dashboard 23 at pinned
# versions, Django at the version Horizon 27 is tested with, our test
# local_settings and mistral-dashboard's enabled file copied into
# openstack_dashboard/local/ (as mistral-dashboard's documentation says),
# and the static files collected and compressed offline once, into
# DIR/horizon-static, so that no test pays for them.  Horizon's pins need
# not agree with the project's: this venv is not the project's, and Horizon
# talks to Keystone and Mistral over HTTP only.
#
# Usage: tools/horizon-venv.sh [DIR]   (default: $HORIZON_VENV or .horizon)
# Idempotent: DIR/.horizon-built records what was installed (and the
# settings' checksum); a second run with the same pins does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DIR=${1:-${HORIZON_VENV:-.horizon}}
# The project's constraints (tox sets PIP_CONSTRAINT) are for its own venv.
unset PIP_CONSTRAINT

PINS=(horizon==27.0.0 mistral-dashboard==23.0.0 Django==5.2.19)
SETTINGS=tests/dashboard/horizon_local_settings.py
MARKER="$DIR/.horizon-built"
WANT="python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ${PINS[*]} settings=$(sha256sum "$SETTINGS" | cut -c1-16)"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] \
    && [ -x "$DIR/bin/python" ]; then
  exit 0
fi

start=$(date +%s)
LOG=$(mktemp -t horizon-venv.XXXXXX)
trap 'rm -f "$LOG"' EXIT
quietly() {
  # quietly WHAT COMMAND...: COMMAND's output shown only if it fails.
  local what=$1
  shift
  if ! "$@" >"$LOG" 2>&1; then
    echo "horizon-venv: $what failed:" >&2
    grep -v '^WARNING: Location' "$LOG" | tail -30 >&2
    exit 1
  fi
}
rm -f "$MARKER"
if [ ! -x "$DIR/bin/python" ]; then
  quietly "creating $DIR" "$PYTHON" -m venv "$DIR"
fi
quietly "upgrading pip" "$DIR/bin/python" -m pip install -q --upgrade pip
quietly "pip install" "$DIR/bin/python" -m pip install -q "${PINS[@]}"

site=$("$DIR/bin/python" -c \
  'import os, openstack_dashboard; print(os.path.dirname(openstack_dashboard.__file__))')
mistral=$("$DIR/bin/python" -c \
  'import os, mistraldashboard; print(os.path.dirname(mistraldashboard.__file__))')
install -m 644 "$SETTINGS" "$site/local/local_settings.py"
install -m 644 "$mistral/enabled/_50_mistral.py" "$site/local/enabled/"

static_start=$(date +%s)
rm -rf "$DIR/horizon-static"
export DJANGO_SETTINGS_MODULE=openstack_dashboard.settings
quietly "collectstatic" "$DIR/bin/django-admin" collectstatic --noinput -v 0
quietly "compress" "$DIR/bin/django-admin" compress --force -v 0
static_s=$(( $(date +%s) - static_start ))

echo "$WANT" > "$MARKER"
echo "horizon-venv: $DIR built in $(( $(date +%s) - start )) s" \
  "(static files collected and compressed in $static_s s; ${PINS[*]})"
