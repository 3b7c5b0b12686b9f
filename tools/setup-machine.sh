#!/usr/bin/env bash
# Prepare a fresh machine (Debian 12, root) for instance-ha: Debian packages,
# the local services the tests use (MariaDB and RabbitMQ for the distributed
# chaos tests), and the project's virtualenv (.venv).
# Idempotent: a second run installs nothing and starts nothing new.
# Quiet: each step's own output goes to a log, shown only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${1:-test}
LOG=$(mktemp -t instance-ha-setup.XXXXXX)
trap 'rm -f "$LOG"' EXIT

# Debian packages the project and its tests use.
APT_PACKAGES=(
  python3-venv
  # Pacemaker's real CLI (crm_mon, crm_simulate, crm_attribute,
  # stonith_admin) for hostmonitor's tests, and a live cluster for e2e.
  pacemaker corosync pacemaker-cli-utils resource-agents
  # ocf-tester validates meta-data with xmllint.
  libxml2-utils
  iproute2 procps
  # Stock Mistral's distributed topology (tests/chaos/distributed.py).
  mariadb-server rabbitmq-server
)
# The instance monitor's tests: a real libvirtd running TCG domains, and
# libvirt's headers for libvirt-python (extras test and compute).
case ",$EXTRAS," in
  *,test,*|*,compute,*)
    APT_PACKAGES+=(libvirt-daemon-system libvirt-daemon-driver-qemu
                   libvirt-clients qemu-system-x86 libvirt-dev pkg-config) ;;
esac
# The dashboard tier's browser: headless Chromium and its WebDriver
# (tests/dashboard/browser.py drives them with Selenium).
case ",$EXTRAS," in
  *,test,*) APT_PACKAGES+=(chromium chromium-driver) ;;
esac

quietly() {
  # quietly WHAT COMMAND...: run COMMAND, its output kept in $LOG and
  # printed only if it fails.
  local what=$1
  shift
  if ! "$@" >"$LOG" 2>&1; then
    echo "setup-machine: $what failed:" >&2
    cat "$LOG" >&2
    exit 1
  fi
}

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
  quietly "apt-get update" apt-get update -qq
  quietly "apt-get install" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_service NAME PORT: start a Debian service (its init script: there
# may be no systemd) unless something already answers on PORT.
start_service() {
  local name=$1 port=$2
  port_open "$port" && return 0
  [ "$(id -u)" -eq 0 ] || { echo "setup-machine: $name is not running on" \
    "127.0.0.1:$port and starting it needs root" >&2; exit 1; }
  echo "setup-machine: starting $name"
  quietly "starting $name" service "$name" start
  for _ in $(seq 60); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "setup-machine: $name does not answer on 127.0.0.1:$port" >&2
  exit 1
}
start_service mariadb 3306
start_service rabbitmq-server 5672
# The tests connect as root over TCP without a password (as on the machines
# they run on); a fresh Debian MariaDB lets root in by its Unix socket only.
if ! mysql -h 127.0.0.1 -u root -e "SELECT 1" >/dev/null 2>&1; then
  echo "setup-machine: letting MariaDB's root in on 127.0.0.1 (test machine)"
  quietly "granting root on 127.0.0.1" mysql -u root -e \
    "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup-machine: creating $VENV with $($PYTHON --version)"
  quietly "creating $VENV" "$PYTHON" -m venv "$VENV"
fi
quietly "upgrading pip" "$VENV/bin/python" -m pip install -q --upgrade pip
# The simulated cloud of the demo and the tests is its own distribution
# (simcloud/): a production install (pip install instance-ha) lacks it.
echo "setup-machine: installing instance-ha[$EXTRAS] and" \
  "instance-ha-simcloud into $VENV"
quietly "pip install" "$VENV/bin/python" -m pip install -q \
  -c constraints.txt -e ".[$EXTRAS]" -e ./simcloud
"$VENV/bin/instance-ha" --version
