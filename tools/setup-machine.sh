#!/usr/bin/env bash
# Prepare a fresh machine (Debian 12, root) for instance-ha: Debian packages,
# the local services the tests use, and the project's virtualenv (.venv).
# Idempotent: a second run installs nothing and starts nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${1:-test}

# Debian packages the project and its tests use.
APT_PACKAGES=(
  python3-venv
  # Pacemaker's real CLI (crm_mon, crm_simulate, crm_attribute,
  # stonith_admin) for hostmonitor's tests, and a live cluster for e2e.
  pacemaker corosync pacemaker-cli-utils resource-agents
  # ocf-tester validates meta-data with xmllint.
  libxml2-utils
  iproute2 procps
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-machine: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup-machine: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup-machine: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
echo "setup-machine: installing instance-ha[$EXTRAS] into $VENV"
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[$EXTRAS]" 2>&1 \
  | grep -v -e '^WARNING: Location' -e '^\s*$' || true
"$VENV/bin/instance-ha" --version
