"""A live Pacemaker cluster for end-to-end tests (root only).

A recipe for Pacemaker without systemd (doc/testing.rst):
one full cluster node ``cn1`` (corosync with knet on 127.0.0.1 plus
pacemakerd) and one or more Pacemaker Remote nodes (``rn1``, ``rn2`` ...),
each a ``pacemaker-remoted`` in its own network namespace reached through a
veth pair ``10.99.N.1`` (host) <-> ``10.99.N.2`` (namespace).  Fencing goes
through ``fence_recorder``, a fence agent that appends every call to a log
in the run's scratch directory and can be made to fail for chosen targets.

Usage::

    with LiveCluster(remotes=["rn1"], fence_delay=2) as cluster:
        killed_at = cluster.kill_remote("rn1")
        cluster.wait_for(lambda x: node_attrs(x, "rn1")["unclean"] == "true")

API (see each docstring): ``kill_remote``, ``restart_remote``,
``lose_quorum`` / ``regain_quorum`` (a real loss: corosync reloaded with
a second node that never runs),
``wait_for(predicate on crm_mon XML)``, ``crm_mon_xml``, ``fence_calls``
(from the recorder's log), ``fence_history`` (stonith_admin --history NODE
--verbose), ``set_fence_failure``, ``remote_connected`` (CIB view: crm_mon
shows a remote being reconnected as online), ``install_host_file``,
``started_processes``; helpers ``node_attrs``, ``resource_attrs``,
``has_quorum``, ``remote_online``, ``avoid_remotes``.  In pytest use the
``start_live_cluster`` / ``live_cluster`` fixtures of conftest.py.

Every daemon is started with its PID recorded (also in a state file, so a
run killed with SIGKILL is cleaned up by the next one) and stopped by that
PID in the documented order: pacemakerd (TERM, wait), the remote daemons,
corosync; SIGKILL after a timeout.  Then the veths and namespaces are
removed, the installed files removed and the backed-up files restored.
That happens on ``__exit__`` (whatever the test did), on SIGTERM (turned
into KeyboardInterrupt while a cluster runs) and at interpreter exit.

Only 127.0.0.1 and the 10.99.N.x addresses of the namespaces created here
are used.  One cluster at a time per machine: a lock file serialises runs.
"""

import atexit
import datetime
import fcntl
import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from lxml import etree

CLUSTER_NODE = "cn1"
REMOTE_PORT = 3121
FENCE_DEVICE = "fence_rec"
FENCE_AGENT_PATH = "/usr/sbin/fence_recorder"
LOCAL_REMOTED = "/usr/local/sbin/pacemaker-remoted"
COROSYNC_CONF = "/etc/corosync/corosync.conf"
AUTHKEY = "/etc/pacemaker/authkey"
CIB_DIR = "/var/lib/pacemaker/cib"
PENGINE_DIR = "/var/lib/pacemaker/pengine"
RA_RUN_DIR = "/run/resource-agents"
BASE_DIR = os.environ.get(
    "INSTANCE_HA_E2E_DIR", "/var/tmp/instance-ha-e2e")

REQUIRED_TOOLS = (
    "corosync", "corosync-quorumtool", "pacemakerd", "crm_mon", "crmadmin",
    "stonith_admin", "cibadmin", "ip", "unshare", "mount")
# /proc/PID/comm of the daemons (truncated to 15 characters by the kernel).
DAEMON_COMMS = {
    "corosync", "pacemakerd", "pacemaker-remot", "pacemaker-based",
    "pacemaker-fence", "pacemaker-execd", "pacemaker-attrd",
    "pacemaker-sched", "pacemaker-contr"}
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
MAX_REMOTES = 50


class ClusterUnavailable(Exception):
    """This machine cannot run the live cluster (not root, tools missing,
    pacemaker-remoted not obtainable).  Tests skip on it, or fail in CI."""


class ClusterError(Exception):
    """The live cluster did not do what was asked (start, wait, stop)."""


# --------------------------------------------------------------------------
# crm_mon XML helpers (predicates for wait_for are written with these)

def node_attrs(xml, name):
    """Attributes of ``<node name=NAME>`` in crm_mon XML, or None."""
    for node in xml.iterfind("nodes/node"):
        if node.get("name") == name:
            return dict(node.attrib)
    return None


def resource_attrs(xml, rsc_id):
    """Attributes of the first ``<resource id=RSC>`` in crm_mon XML."""
    for rsc in xml.iter("resource"):
        if rsc.get("id") == rsc_id:
            return dict(rsc.attrib)
    return None


def has_quorum(xml):
    dc = xml.find("summary/current_dc")
    return dc is not None and dc.get("with_quorum") == "true"


def remote_online(xml, name):
    """The remote node is really up: online, clean, connection Started."""
    node = node_attrs(xml, name) or {}
    rsc = resource_attrs(xml, name) or {}
    return (node.get("online") == "true" and node.get("unclean") == "false"
            and rsc.get("role") == "Started" and rsc.get("failed") == "false")


def node_summary(xml):
    """One line per node and resource, for error messages."""
    parts = []
    for node in xml.iterfind("nodes/node"):
        parts.append("node {}: online={} unclean={} pending={}".format(
            node.get("name"), node.get("online"), node.get("unclean"),
            node.get("pending")))
    for rsc in xml.iter("resource"):
        nodes = ",".join(n.get("name") for n in rsc.iterfind("node"))
        parts.append("resource {}: role={} failed={} on={}".format(
            rsc.get("id"), rsc.get("role"), rsc.get("failed"), nodes))
    for event in xml.iter("fence_event"):
        parts.append(f"fence_event {dict(event.attrib)}")
    return "\n".join(parts)


def avoid_remotes(rsc_id, remotes):
    """rsc_location constraints that keep RSC off (and never probed on) the
    remote nodes, for the ``constraints`` argument of LiveCluster."""
    return [
        f'<rsc_location id="{rsc_id}-avoid-{name}" rsc="{rsc_id}" '
        f'node="{name}" score="-INFINITY" resource-discovery="never"/>'
        for name in remotes]


# --------------------------------------------------------------------------
# processes

def _proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def pid_alive(pid, starttime=None):
    """True when PID runs (not a zombie) and, if STARTTIME is given, is
    still the process that was recorded (no PID reuse)."""
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return starttime is None or stat[2] == starttime


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[1] == pid:
                out.append(int(entry))
    return out


def _netns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _running_daemons():
    """{pid: comm} of the cluster daemons in this network namespace (the
    daemons' IPC uses abstract sockets, which are per network namespace;
    daemons that other tests run in namespaces of their own do not clash)."""
    found = {}
    own = _netns("self")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            comm = _comm(int(entry))
            if (comm in DAEMON_COMMS and pid_alive(int(entry))
                    and _netns(entry) == own):
                found[int(entry)] = comm
    return found


def _run(argv, timeout=30, check=True, **kw):
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, **kw)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise ClusterError(
            f"{' '.join(argv)}: exit {proc.returncode}: {detail}")
    return proc


def _ids(user="hacluster", group="haclient"):
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


# --------------------------------------------------------------------------
# prerequisites

def check_prerequisites():
    """Raise ClusterUnavailable with the reason when this machine cannot
    run the live cluster."""
    if os.geteuid() != 0:
        raise ClusterUnavailable("the live cluster needs root")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise ClusterUnavailable(
            f"missing tools: {' '.join(missing)} "
            "(run tools/setup-machine.sh)")
    try:
        _ids()
    except KeyError:
        raise ClusterUnavailable(
            "no hacluster user / haclient group (pacemaker not installed)"
        ) from None
    if not (os.path.exists(LOCAL_REMOTED) or shutil.which("apt-get")
            and shutil.which("dpkg-deb")):
        raise ClusterUnavailable(
            f"{LOCAL_REMOTED} is missing and apt-get/dpkg-deb are not "
            "there to extract it from the pacemaker-remote .deb")


def pacemaker_version():
    out = _run(["pacemakerd", "--version"]).stdout
    return out.splitlines()[0].strip()


def obtain_remoted(cache_dir=None):
    """Path of a pacemaker-remoted binary: /usr/local/sbin's, else one
    extracted from Debian's pacemaker-remote .deb (same version as the
    installed pacemaker) into a cache directory, downloaded once."""
    override = os.environ.get("INSTANCE_HA_E2E_REMOTED")
    if override:
        return override
    if os.access(LOCAL_REMOTED, os.X_OK):
        return LOCAL_REMOTED
    cache_dir = cache_dir or os.path.join(BASE_DIR, "cache")
    try:
        version = _run(["dpkg-query", "-W", "-f=${Version}",
                        "pacemaker"]).stdout.strip()
    except (ClusterError, OSError) as exc:
        raise ClusterUnavailable(
            f"cannot tell the pacemaker package version: {exc}") from None
    target = os.path.join(cache_dir, f"pacemaker-remote_{version}")
    binary = os.path.join(target, "usr/sbin/pacemaker-remoted")
    if os.access(binary, os.X_OK):
        return binary
    os.makedirs(cache_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="download-", dir=cache_dir)
    try:
        _run(["apt-get", "download", f"pacemaker-remote={version}"],
             cwd=work, timeout=180)
        debs = [f for f in os.listdir(work) if f.endswith(".deb")]
        if len(debs) != 1:
            raise ClusterError(f"apt-get download gave {debs!r}")
        _run(["dpkg-deb", "-x", os.path.join(work, debs[0]),
              os.path.join(work, "x")], timeout=60)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(os.path.join(work, "x"), target)
    except (ClusterError, OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterUnavailable(
            "cannot obtain pacemaker-remoted from the pacemaker-remote "
            f".deb: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary


def acquire_machine_lock(timeout=240):
    """Take the lock that serialises live clusters on this machine (one
    cluster at a time: they share corosync.conf, /var/lib/pacemaker and the
    daemons' IPC names); return its fd.  Also for checks that must not
    see another run's cluster (e.g. "no daemon left")."""
    os.makedirs(BASE_DIR, exist_ok=True)
    fd = os.open(os.path.join(BASE_DIR, "lock"),
                 os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise ClusterError(
                    f"another live cluster run holds {BASE_DIR}/lock "
                    f"for more than {timeout}s") from None
            time.sleep(0.5)


def release_machine_lock(fd):
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


# --------------------------------------------------------------------------
# generated files

COROSYNC_CONF_TEMPLATE = """\
# Written by the instance-ha e2e harness (tests/e2e/cluster.py) for one run;
# the previous file is restored when the run ends.
totem {
    version: 2
    cluster_name: sandbox
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 3000
}
logging {
    to_stderr: no
    to_logfile: yes
    logfile: %(logfile)s
    to_syslog: no
    timestamp: on
}
quorum {
    provider: corosync_votequorum
}
nodelist {
    node {
        name: %(node)s
        nodeid: 1
        ring0_addr: 127.0.0.1
    }
}
"""

# Records every call as one line in LOG; off/reboot/on fail (exit 1) for
# the targets listed, one per line, in FAIL.  Pacemaker's fencer passes its
# options as key=value lines on stdin; legacy callers use -o ACTION.
FENCE_AGENT_TEMPLATE = r"""#!/bin/sh
# fence_recorder: recording test fence agent of the instance-ha e2e harness
# (tests/e2e/cluster.py); installed for one test run and removed after it.
LOG=%(log)s
FAIL=%(fail)s
action=""; target=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--action) action="$2"; shift ;;
    --action=*) action="${1#--action=}" ;;
    -n|--plug|--port) target="$2"; shift ;;
    --plug=*|--port=*) target="${1#*=}" ;;
  esac
  shift
done
if [ -z "$action" ] && [ ! -t 0 ]; then
  while IFS= read -r line; do
    case "$line" in
      action=*) action="${line#action=}" ;;
      option=*) [ -z "$action" ] && action="${line#option=}" ;;
      port=*|plug=*) target="${line#*=}" ;;
      nodename=*) [ -z "$target" ] && target="${line#nodename=}" ;;
    esac
  done
fi
[ -z "$action" ] && action=reboot
record() {
  echo "$(date '+%%F %%T.%%N epoch=%%s.%%N') $*" >> "$LOG"
}
case "$action" in
  metadata|meta-data)
cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_recorder"
 shortdesc="Test fence agent that records calls">
<longdesc>Records each fencing request to a log file and reports success,
or failure for the targets listed in a control file.</longdesc>
<parameters>
  <parameter name="action" unique="0" required="0">
    <getopt mixed="-o, --action=[action]"/>
    <content type="string" default="reboot"/>
    <shortdesc lang="en">Fencing action</shortdesc>
  </parameter>
  <parameter name="plug" unique="0" required="0">
    <getopt mixed="-n, --plug=[id]"/>
    <content type="string"/>
    <shortdesc lang="en">Node to fence</shortdesc>
  </parameter>
  <parameter name="port" unique="0" required="0" deprecated="1">
    <getopt mixed="-n, --plug=[id]"/>
    <content type="string"/>
    <shortdesc lang="en">Node to fence</shortdesc>
  </parameter>
</parameters>
<actions>
  <action name="on" automatic="0"/>
  <action name="off"/>
  <action name="reboot"/>
  <action name="status"/>
  <action name="list"/>
  <action name="list-status"/>
  <action name="monitor"/>
  <action name="metadata"/>
  <action name="validate-all"/>
</actions>
</resource-agent>
XML
    exit 0 ;;
  monitor|status|list|list-status|validate-all)
    record "action=$action target=$target"; exit 0 ;;
  off|reboot|on)
    if [ -n "$target" ] && [ -f "$FAIL" ] && grep -qxF -- "$target" "$FAIL"
    then
      record "FENCE action=$action target=$target result=failed"
      echo "fence_recorder: fencing of $target made to fail by the test" >&2
      exit 1
    fi
    record "FENCE action=$action target=$target result=ok"; exit 0 ;;
  *) record "unknown action=$action target=$target"; exit 1 ;;
esac
"""

# lose_quorum(): a second cluster node that never runs.
COROSYNC_ABSENT_NODE = """    node {
        name: cn2
        nodeid: 2
        ring0_addr: 10.99.0.3
    }
"""

FENCE_LINE_RE = re.compile(
    r"^(?P<when>\S+ \S+) epoch=(?P<epoch>[0-9.]+) FENCE action=(?P<action>\S*)"
    r" target=(?P<target>\S*) result=(?P<result>\S+)$")

# Runs the remote daemon in the node's network namespace with its own mount
# and UTS namespaces: private /dev/shm (libqb IPC), private
# /run/resource-agents (RA state files), its own hostname.  The exec chain
# keeps the PID: Popen's PID is pacemaker-remoted itself.
REMOTE_SCRIPT = """\
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs %(ra_run)s
hostname %(name)s
export PCMK_logfile=%(logfile)s
exec %(remoted)s
"""


# --------------------------------------------------------------------------

class LiveCluster:
    """One live cluster: cn1 + remote nodes; a context manager.

    remotes: remote node names (``rn1`` ...), each one a namespace of the
        same name with veth ``veth-NAME`` (10.99.N.1) <-> ``veth-NAME-r``
        (10.99.N.2), N being its index in the list.
    fence_delay: seconds, ``pcmk_delay_base`` of the fence device (keeps a
        remote node ``unclean`` that long before it is fenced); 0 = none.
    reconnect_interval: seconds, the remote resources' reconnect_interval.
    properties: extra/overriding cluster properties {name: value}.
    resources, constraints, alerts: extra CIB elements (XML strings or
        lxml elements) appended to <resources>, <constraints>, <alerts>.
        In XML strings, ``{scratch}`` stands for the run's scratch
        directory (e.g. an alert's recipient file).
    cib_hook: callable(cib_root) to edit the seed CIB before it is used.
    fence_fail: targets for which fencing fails from the start.
    host_files: {absolute path: text or (text, mode)} installed on the
        host before the daemons start (mode defaults to 0755), removed or
        restored at the end: see install_host_file().
    scratch_files: {name: text or (text, mode)} written into the scratch
        directory before the cluster starts (agents, scripts, configs;
        mode defaults to 0644; the directory is 0755 so hacluster, which
        runs alert agents, can read them).
    """

    def __init__(self, remotes=("rn1",), fence_delay=0, reconnect_interval=5,
                 remote_monitor_interval=5, properties=None, resources=(),
                 constraints=(), alerts=(), cib_hook=None, fence_fail=(),
                 scratch_files=None, host_files=None, start_timeout=90,
                 stop_timeout=30,
                 lock_timeout=None, scratch_dir=None):
        remotes = list(remotes)
        if not remotes or len(remotes) > MAX_REMOTES:
            raise ValueError(f"need 1..{MAX_REMOTES} remote nodes")
        for name in remotes:
            if not NAME_RE.match(name) or name == CLUSTER_NODE:
                raise ValueError(f"bad remote node name {name!r}")
        if len(set(remotes)) != len(remotes):
            raise ValueError("duplicate remote node names")
        self.remotes = remotes
        self.fence_delay = fence_delay
        self.reconnect_interval = reconnect_interval
        self.remote_monitor_interval = remote_monitor_interval
        self.properties = dict(properties or {})
        self.extra_resources = list(resources)
        self.extra_constraints = list(constraints)
        self.extra_alerts = list(alerts)
        self.cib_hook = cib_hook
        self.initial_fence_fail = list(fence_fail)
        self.scratch_files = dict(scratch_files or {})
        self.host_files = dict(host_files or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.lock_timeout = lock_timeout if lock_timeout is not None else (
            float(os.environ.get("INSTANCE_HA_E2E_LOCK_TIMEOUT", "240")))
        self.scratch = scratch_dir
        self.remoted = None
        self.state = None
        self.timings = {}
        self._popens = {}
        self._lock_fd = None
        self._old_sigterm = None
        self._atexit = False
        self._stopped = False

    # -- addresses and paths ----------------------------------------------

    def address(self, name):
        """(host side, namespace side) IPv4 addresses of remote NAME."""
        index = self.remotes.index(name)
        return f"10.99.{index}.1", f"10.99.{index}.2"

    def path(self, *parts):
        return os.path.join(self.scratch, *parts)

    @property
    def fence_log(self):
        return self.path("fence_calls.log")

    @property
    def fence_fail_file(self):
        return self.path("fence_fail_targets")

    @property
    def pacemaker_log(self):
        return self.path("pacemaker.log")

    # -- context manager ----------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- start --------------------------------------------------------------

    def start(self):
        check_prerequisites()
        t0 = time.monotonic()
        self._acquire_lock()
        self.timings["lock_wait"] = time.monotonic() - t0
        try:
            self._recover_stale()
            self._check_machine_free()
            if self.scratch is None:
                self.scratch = tempfile.mkdtemp(prefix="instance-ha-e2e-")
            else:
                os.makedirs(self.scratch, exist_ok=True)
            # Alert agents and the pacemaker log are accessed as hacluster.
            os.chmod(self.scratch, 0o755)
            self.remoted = obtain_remoted()
            self.state = {
                "scratch": self.scratch, "owner_pid": os.getpid(),
                "processes": [], "veths": [], "netns": [],
                "installed": [], "backups": [], "created_dirs": [],
                "cleaned_dirs": [], "dir_modes": []}
            self._save_state()
            self._arm_cleanup()
        except BaseException:
            self._release_lock()
            raise
        try:
            self._install_files()
            self._make_network()
            self._start_daemons()
            self.wait_ready(self.start_timeout)
            self.pacemaker_children()
        except BaseException:
            try:
                self.stop()
            except Exception as exc:  # noqa: BLE001 - keep the first error
                sys.stderr.write("live cluster: stop after a failed start: "
                                 f"{exc}\n")
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def _acquire_lock(self):
        if self._lock_fd is None:  # (the harness's own test may hand one)
            self._lock_fd = acquire_machine_lock(self.lock_timeout)

    def _release_lock(self):
        if self._lock_fd is not None:
            release_machine_lock(self._lock_fd)
            self._lock_fd = None

    @property
    def _state_file(self):
        return os.path.join(BASE_DIR, "state.json")

    def _save_state(self):
        tmp = self._state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self._state_file)

    def _recover_stale(self):
        """Undo a run that died without cleaning up (e.g. SIGKILL): its
        state file lists its PIDs, namespaces, files and backups."""
        try:
            with open(self._state_file) as f:
                stale = json.load(f)
        except FileNotFoundError:
            return
        except ValueError:
            os.unlink(self._state_file)
            return
        sys.stderr.write(
            "live cluster: cleaning up after an unfinished run "
            f"({stale.get('scratch')})\n")
        try:
            self._teardown(stale)
        except ClusterError as exc:
            # e.g. its scratch dir (backups) was removed meanwhile; the
            # check for running daemons below still protects this run.
            sys.stderr.write(f"live cluster: {exc}\n")
        os.unlink(self._state_file)

    def _check_machine_free(self):
        daemons = _running_daemons()
        if daemons:
            raise ClusterError(
                "cluster daemons not started by this harness are running: "
                f"{daemons}; refusing to touch them")
        links = _run(["ip", "-o", "link", "show"]).stdout
        netns = _run(["ip", "netns", "list"]).stdout.split()
        addrs = _run(["ip", "-o", "-4", "addr", "show"]).stdout
        for name in self.remotes:
            host_ip = self.address(name)[0]
            if name in netns:
                raise ClusterError(f"network namespace {name} exists")
            if re.search(rf"\bveth-{name}(-r)?[@:]", links):
                raise ClusterError(f"interface veth-{name} exists")
            if re.search(rf"inet {re.escape(host_ip)}/", addrs):
                raise ClusterError(f"address {host_ip} is in use")

    def _arm_cleanup(self):
        if not self._atexit:
            atexit.register(self._atexit_stop)
            self._atexit = True
        if threading.current_thread() is threading.main_thread():
            self._old_sigterm = signal.signal(
                signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame):
        raise KeyboardInterrupt("SIGTERM during a live cluster run")

    def _atexit_stop(self):
        if not self._stopped and self.state is not None:
            self.stop()

    # files ----------------------------------------------------------------

    def _backup(self, path):
        """Copy PATH into the scratch dir, to be restored at the end."""
        if not os.path.lexists(path):
            return False
        backup_dir = self.path("backup")
        os.makedirs(backup_dir, exist_ok=True)
        dest = os.path.join(
            backup_dir, path.strip("/").replace("/", "__"))
        shutil.copy2(path, dest)
        st = os.lstat(path)
        self.state["backups"].append(
            {"path": path, "backup": dest, "uid": st.st_uid,
             "gid": st.st_gid, "mode": st.st_mode & 0o7777})
        self._save_state()
        return True

    def _makedirs(self, directory):
        """mkdir -p, recording every directory created (removed at the
        end if empty)."""
        missing = []
        while directory and not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for directory in reversed(missing):
            self.state["created_dirs"].append(directory)
            self._save_state()
            os.mkdir(directory, 0o755)

    def _install(self, path, content, mode, owner=None):
        self._makedirs(os.path.dirname(path))
        self._backup(path)
        self.state["installed"].append(path)
        self._save_state()
        tmp = path + ".ihae2e-tmp"
        with open(tmp, "w") as f:
            f.write(content)
        os.chmod(tmp, mode)
        if owner:
            os.chown(tmp, *owner)
        os.replace(tmp, path)

    def _clean_dir(self, directory):
        """Back up then remove the files of DIRECTORY (CIB / scheduler
        state), so a run starts from the seed CIB only."""
        self.state["cleaned_dirs"].append(directory)
        self._save_state()
        for entry in sorted(os.listdir(directory)):
            path = os.path.join(directory, entry)
            if os.path.isfile(path) or os.path.islink(path):
                self._backup(path)
                os.unlink(path)

    def _install_files(self):
        hacluster = _ids()
        for name in ("fence_calls.log", "pacemaker.log", "alerts.log"):
            path = self.path(name)
            open(path, "a").close()
            os.chown(path, *hacluster)
            os.chmod(path, 0o664)
        for name, content in self.scratch_files.items():
            text, mode = (content if isinstance(content, tuple)
                          else (content, 0o644))
            path = self.path(name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, mode)
        with open(self.fence_fail_file, "w") as f:
            f.write("".join(t + "\n" for t in self.initial_fence_fail))
        os.chmod(self.fence_fail_file, 0o644)
        self._install(COROSYNC_CONF, COROSYNC_CONF_TEMPLATE % {
            "logfile": self.path("corosync.log"), "node": CLUSTER_NODE},
            0o644)
        self._install(FENCE_AGENT_PATH, FENCE_AGENT_TEMPLATE % {
            "log": self.fence_log, "fail": self.fence_fail_file}, 0o755)
        if not os.path.exists(AUTHKEY):
            # Normally made by pacemaker's postinst; cn1 and the remotes
            # share the filesystem, hence the key.
            self._install(AUTHKEY, os.urandom(3072).hex()[:4096], 0o640,
                          (0, hacluster[1]))
        # pacemakerd chowns its state directories (measured: /var/lib/
        # pacemaker went from root to hacluster); put them back afterwards.
        for directory in (os.path.dirname(CIB_DIR), CIB_DIR, PENGINE_DIR):
            st = os.stat(directory)
            self.state["dir_modes"].append(
                {"path": directory, "uid": st.st_uid, "gid": st.st_gid,
                 "mode": st.st_mode & 0o7777})
        self._save_state()
        for directory in (CIB_DIR, PENGINE_DIR):
            self._clean_dir(directory)
        cib = self.seed_cib()
        with open(self.path("cib-seed.xml"), "wb") as f:
            f.write(cib)
        self._install(os.path.join(CIB_DIR, "cib.xml"), cib.decode(),
                      0o600, hacluster)
        self._makedirs(RA_RUN_DIR)
        for path, content in self.host_files.items():
            text, mode = (content if isinstance(content, tuple)
                          else (content, 0o755))
            self.install_host_file(path, text, mode)

    def seed_cib(self):
        """The whole seed configuration (bytes)."""
        def sub(parent, tag, **attrib):
            return etree.SubElement(
                parent, tag, {k.replace("_", "-"): str(v)
                              for k, v in attrib.items()})

        def nvpairs(parent, prefix, pairs):
            for name, value in pairs.items():
                sub(parent, "nvpair", id=f"{prefix}-{name}",
                    name=name, value=value)

        def extra(parent, items):
            for item in items:
                if isinstance(item, bytes):
                    item = item.decode()
                if isinstance(item, str):
                    item = etree.fromstring(
                        item.replace("{scratch}", self.scratch))
                parent.append(item)

        cib = etree.Element("cib", {
            "crm_feature_set": "3.16.1", "validate-with": "pacemaker-3.9",
            "epoch": "1", "num_updates": "0", "admin_epoch": "0"})
        conf = sub(cib, "configuration")
        crm_config = sub(conf, "crm_config")
        props = {
            "stonith-enabled": "true", "no-quorum-policy": "ignore",
            "cluster-recheck-interval": "30s", "dc-deadtime": "2s",
            "stonith-timeout": "30s"}
        props.update(self.properties)
        nvpairs(sub(crm_config, "cluster_property_set",
                    id="cib-bootstrap-options"), "opt", props)
        sub(conf, "nodes")
        resources = sub(conf, "resources")
        fence = sub(resources, "primitive", id=FENCE_DEVICE,
                    **{"class": "stonith", "type": "fence_recorder"})
        fence_ia = {"pcmk_host_list": " ".join(self.remotes),
                    "pcmk_host_check": "static-list"}
        if self.fence_delay:
            fence_ia["pcmk_delay_base"] = f"{self.fence_delay}s"
        nvpairs(sub(fence, "instance_attributes", id=FENCE_DEVICE + "-ia"),
                FENCE_DEVICE, fence_ia)
        sub(sub(fence, "operations"), "op", id=FENCE_DEVICE + "-mon",
            name="monitor", interval="60s")
        for name in self.remotes:
            rsc = sub(resources, "primitive", id=name, provider="pacemaker",
                      type="remote", **{"class": "ocf"})
            nvpairs(sub(rsc, "instance_attributes", id=name + "-ia"), name, {
                "server": self.address(name)[1], "port": REMOTE_PORT,
                "reconnect_interval": f"{self.reconnect_interval}s"})
            sub(sub(rsc, "operations"), "op", id=name + "-mon",
                name="monitor", interval=f"{self.remote_monitor_interval}s",
                timeout="15s")
        extra(resources, self.extra_resources)
        extra(sub(conf, "constraints"), self.extra_constraints)
        if self.extra_alerts:
            extra(sub(conf, "alerts"), self.extra_alerts)
        sub(cib, "status")
        if self.cib_hook is not None:
            self.cib_hook(cib)
        return etree.tostring(cib, pretty_print=True)

    # network --------------------------------------------------------------

    def _make_network(self):
        for name in self.remotes:
            host_ip, ns_ip = self.address(name)
            host_if, ns_if = "veth-" + name, f"veth-{name}-r"
            self.state["netns"].append(name)
            self._save_state()
            _run(["ip", "netns", "add", name])
            self.state["veths"].append(host_if)
            self._save_state()
            _run(["ip", "link", "add", host_if, "type", "veth",
                  "peer", "name", ns_if])
            _run(["ip", "link", "set", ns_if, "netns", name])
            _run(["ip", "addr", "add", host_ip + "/24", "dev", host_if])
            _run(["ip", "link", "set", host_if, "up"])
            _run(["ip", "-n", name, "addr", "add", ns_ip + "/24",
                  "dev", ns_if])
            _run(["ip", "-n", name, "link", "set", ns_if, "up"])
            _run(["ip", "-n", name, "link", "set", "lo", "up"])

    # daemons --------------------------------------------------------------

    def _spawn(self, key, argv, env=None):
        out = open(self.path(key + ".out"), "ab")
        try:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finally:
            out.close()
        stat = None
        for _ in range(50):
            stat = _proc_stat(popen.pid)
            if stat is not None:
                break
            time.sleep(0.01)
        record = {"key": key, "pid": popen.pid,
                  "starttime": stat[2] if stat else None, "role": key}
        self.state["processes"].append(record)
        self._save_state()
        self._popens[popen.pid] = popen
        return popen

    def _start_daemons(self):
        t0 = time.monotonic()
        self._spawn("corosync", ["corosync", "-f"])
        deadline = time.monotonic() + 20
        while True:
            rc = _run(["corosync-quorumtool", "-s"], check=False).returncode
            if rc in (0, 2):
                break
            if time.monotonic() > deadline:
                raise ClusterError("corosync did not come up; see "
                                   + self.path("corosync.log"))
            time.sleep(0.1)
        self.timings["corosync_ready"] = time.monotonic() - t0
        env = dict(os.environ, PCMK_logfile=self.pacemaker_log)
        self._spawn("pacemakerd", ["pacemakerd"], env=env)
        for name in self.remotes:
            self._start_remote(name)

    def _start_remote(self, name):
        script = REMOTE_SCRIPT % {
            "ra_run": RA_RUN_DIR, "name": name,
            "logfile": self.path(name + ".log"), "remoted": self.remoted}
        return self._spawn(name, [
            "ip", "netns", "exec", name, "unshare", "--mount", "--uts",
            "--propagation", "private", "sh", "-c", script])

    def _records(self, key=None, alive=None):
        out = []
        for rec in (self.state or {}).get("processes", []):
            if key is not None and rec["key"] != key:
                continue
            if alive is not None and pid_alive(
                    rec["pid"], rec["starttime"]) != alive:
                continue
            out.append(rec)
        return out

    def pid(self, key):
        """PID of the running daemon KEY (corosync, pacemakerd, rn1...)."""
        recs = self._records(key, alive=True)
        if not recs:
            raise ClusterError(f"{key} is not running")
        return recs[-1]["pid"]

    def pacemaker_children(self):
        """Record (and return) the PIDs of pacemakerd's subdaemons, so they
        are stopped by PID even if pacemakerd itself has to be killed."""
        found = []
        for parent in self._records("pacemakerd", alive=True):
            for pid in _children(parent["pid"]):
                if _comm(pid) in DAEMON_COMMS:
                    known = {(r["pid"], r["starttime"])
                             for r in self.state["processes"]}
                    stat = _proc_stat(pid)
                    if stat and (pid, stat[2]) not in known:
                        self.state["processes"].append({
                            "key": "pacemakerd-child", "pid": pid,
                            "starttime": stat[2], "role": _comm(pid)})
                    found.append(pid)
        self._save_state()
        return found

    def started_processes(self):
        """Every process this cluster started: [{key, pid, starttime}]."""
        return [dict(r) for r in (self.state or {}).get("processes", [])]

    def wait_ready(self, timeout=60):
        def ready(xml):
            return (has_quorum(xml)
                    and (node_attrs(xml, CLUSTER_NODE) or {}).get("online")
                    == "true"
                    and (resource_attrs(xml, FENCE_DEVICE) or {}).get("role")
                    == "Started"
                    and all(remote_online(xml, n) for n in self.remotes))
        deadline = time.monotonic() + timeout
        self.wait_for(ready, timeout, "cluster ready")
        for name in self.remotes:
            self.wait_remote_online(
                name, max(1.0, deadline - time.monotonic()))
        # The DC must also be idle: a remote daemon killed while the
        # transition that starts the recurring monitors is still running
        # is noticed only at the next cluster-recheck-interval (measured
        # with 2.1.5: the lost connection is recorded but the transition
        # is not aborted).
        idle = 0
        while idle < 2:
            idle = idle + 1 if self.controller_state() == "S_IDLE" else 0
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the DC did not become idle; logs in {self.scratch}")
            time.sleep(0.2)
        for name in self.remotes:
            if _comm(self.pid(name)) != "pacemaker-remot":
                raise ClusterError(f"PID {self.pid(name)} of {name} is "
                                   "not pacemaker-remoted")

    # -- observation -------------------------------------------------------

    def controller_state(self):
        """FSA state of cn1's controller (S_IDLE when nothing is going
        on), from ``crmadmin --status``; None if it does not answer."""
        try:
            xml = self._xml(["crmadmin", "--status", CLUSTER_NODE,
                             "--output-as=xml"])
        except (ClusterError, etree.XMLSyntaxError,
                subprocess.TimeoutExpired):
            return None
        crmd = xml.find("crmd")
        return crmd.get("state") if crmd is not None else None

    def crm_mon_xml(self, *args):
        """Parsed ``crm_mon -1 --output-as=xml [ARGS]`` (an lxml root)."""
        return self._xml(["crm_mon", "-1", "--output-as=xml", *args])

    def crm_mon_raw(self, *args):
        return self._raw(["crm_mon", "-1", "--output-as=xml", *args])

    def _raw(self, argv):
        proc = subprocess.run(argv, capture_output=True, timeout=20,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).decode(errors="replace")
            raise ClusterError(
                f"{' '.join(argv)}: exit {proc.returncode}: {detail[-500:]}")
        return proc.stdout

    def _xml(self, argv):
        return etree.fromstring(self._raw(argv))

    def wait_for(self, predicate, timeout=30, what=None, interval=0.1):
        """Poll crm_mon XML until PREDICATE(xml) is true; return that XML.
        A crm_mon that fails, or a predicate raising KeyError/TypeError
        (e.g. a node or resource not in the XML yet), counts as not yet.
        Raise ClusterError (with the last state) after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        last, error = None, None
        while True:
            try:
                last = self.crm_mon_xml()
                if predicate(last):
                    return last
                error = None
            except (ClusterError, etree.XMLSyntaxError,
                    subprocess.TimeoutExpired, KeyError, TypeError) as exc:
                error = exc
            if time.monotonic() > deadline:
                what = what or getattr(predicate, "__name__", "?")
                summary = node_summary(last) if last is not None else ""
                if error:
                    summary += f"\nlast error: {error}"
                raise ClusterError(
                    f"timed out after {timeout}s waiting for {what}; "
                    f"logs in {self.scratch}\n{summary}")
            time.sleep(interval)

    def fence_calls(self):
        """Fencing actions recorded by fence_recorder, oldest first:
        [{time (epoch float), when, action, target, result}]."""
        calls = []
        try:
            with open(self.fence_log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return calls
        for line in lines:
            match = FENCE_LINE_RE.match(line)
            if match:
                call = match.groupdict()
                call["time"] = float(call.pop("epoch"))
                calls.append(call)
        return calls

    def fence_history_xml(self, node):
        """Parsed ``stonith_admin --history NODE --verbose --output-as=xml``
        (without --verbose 2.1.5 shows one stale event)."""
        return self._xml(["stonith_admin", "--history", node, "--verbose",
                          "--output-as=xml"])

    def fence_history(self, node):
        """Fence events for NODE, newest first: the <fence_event>
        attributes, with ``completed`` also as epoch seconds in
        ``completed_epoch`` (None when still pending)."""
        events = []
        for event in self.fence_history_xml(node).iter("fence_event"):
            attrs = dict(event.attrib)
            attrs["completed_epoch"] = parse_completed(attrs.get("completed"))
            events.append(attrs)
        return events

    def install_host_file(self, path, content, mode=0o755):
        """Install a file anywhere on the host for this run (e.g. an OCF
        agent under /usr/lib/ocf/resource.d/PROVIDER/): missing parent
        directories are created, an existing file is backed up; at the end
        the file is removed, the backup restored, the created directories
        removed.  ``{scratch}`` in CONTENT stands for the scratch dir."""
        if not os.path.isabs(path):
            raise ValueError(f"not an absolute path: {path!r}")
        self._install(path, content.replace("{scratch}", self.scratch),
                      mode)

    def set_fence_failure(self, target, fail=True):
        """Make fencing of TARGET fail (exit 1) or succeed again."""
        with open(self.fence_fail_file) as f:
            targets = [t for t in f.read().split() if t != target]
        if fail:
            targets.append(target)
        tmp = self.fence_fail_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(t + "\n" for t in targets))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.fence_fail_file)

    # -- actions -------------------------------------------------------------

    def _reload_corosync(self, extra_node):
        text = COROSYNC_CONF_TEMPLATE % {
            "logfile": self.path("corosync.log"), "node": CLUSTER_NODE}
        if extra_node:
            text = text.rstrip().rstrip("}") + COROSYNC_ABSENT_NODE + "}\n"
        tmp = COROSYNC_CONF + ".ihae2e-tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, COROSYNC_CONF)
        _run(["corosync-cfgtool", "-R"], timeout=15)

    def lose_quorum(self, timeout=15):
        """Make cn1 lose quorum, for real: add a node ``cn2`` that never
        runs (address 10.99.0.3, unused) to corosync's nodelist and reload
        corosync (``corosync-cfgtool -R``): 1 vote of 2 expected.  Measured:
        crm_mon shows with_quorum="false" 0.05 s later; with the seed's
        no-quorum-policy=ignore, Pacemaker keeps managing resources and
        fencing.  (``corosync-quorumtool -e 2`` is refused.)  Returns the
        time (epoch) of the reload."""
        at = time.time()
        self._reload_corosync(extra_node=True)
        self.wait_for(lambda x: not has_quorum(x), timeout, "quorum lost")
        return at

    def regain_quorum(self, timeout=15):
        """Undo lose_quorum() (about 2 s until crm_mon shows quorum)."""
        at = time.time()
        self._reload_corosync(extra_node=False)
        self.wait_for(has_quorum, timeout, "quorum regained")
        return at

    def kill_remote(self, name):
        """kill -9 the remote daemon of NAME; return the time (epoch)."""
        pid = self.pid(name)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        popen = self._popens.get(pid)
        if popen is not None:
            popen.wait(timeout=10)
        return killed_at

    def restart_remote(self, name, wait=True, timeout=None):
        """Start NAME's remote daemon again (TERM it first if it runs);
        with WAIT, return once the cluster shows it online again."""
        for rec in self._records(name, alive=True):
            self._stop_process(rec, signal.SIGTERM, 10)
        self._start_remote(name)
        if wait:
            if timeout is None:
                timeout = self.reconnect_interval + 30
            return self.wait_remote_online(name, timeout)
        return None

    def remote_connected(self, name):
        """The cluster holds a live connection to remote node NAME: its
        CIB node_state has in_ccm="true" and the connection resource's
        last operation is not pending.

        crm_mon alone cannot tell: while the cluster retries the
        connection to a dead remote daemon (every reconnect_interval, each
        attempt lasting up to the 20 s start timeout), crm_mon 2.1.5 shows
        the node online="true" unclean="false" and the connection resource
        role="Starting", then even role="Started" failed="false" while the
        start is still pending (measured)."""
        try:
            state = self._xml(["cibadmin", "--query", "--xpath",
                               f"//node_state[@id='{name}']"])
            lrm = self._xml(["cibadmin", "--query", "--xpath",
                             f"//lrm_resource[@id='{name}']"])
        except (ClusterError, etree.XMLSyntaxError,
                subprocess.TimeoutExpired):
            return False
        if state.tag != "node_state" or state.get("in_ccm") != "true":
            return False
        ops = {op.get("id"): op for op in lrm.iter("lrm_rsc_op")}
        last = ops.get(name + "_last_0")
        return (last is not None and last.get("operation") == "start"
                and last.get("rc-code") == "0"
                and last.get("op-status") == "0")

    def wait_remote_online(self, name, timeout=30):
        """Wait until NAME is online in crm_mon (online, clean, connection
        Started) and remote_connected(NAME); return the crm_mon XML."""
        deadline = time.monotonic() + timeout
        while True:
            xml = self.wait_for(
                lambda x: remote_online(x, name),
                max(0.0, deadline - time.monotonic()), f"{name} online")
            if self.remote_connected(name):
                return self.crm_mon_xml()
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"timed out after {timeout}s waiting for a connection "
                    f"to {name}; logs in {self.scratch}\n"
                    + node_summary(xml))
            time.sleep(0.1)

    # -- stop ----------------------------------------------------------------

    def stop(self):
        """Stop everything by PID, remove the network, restore the files.
        Idempotent; also runs at interpreter exit if not called."""
        if self._stopped or self.state is None:
            self._release_lock()
            return
        t0 = time.monotonic()
        try:
            try:
                self.pacemaker_children()
            except Exception:  # noqa: BLE001 - best effort before stopping
                pass
            self._settle_before_stop()
            self._teardown(self.state)
            try:
                os.unlink(self._state_file)
            except FileNotFoundError:
                pass
        finally:
            self._stopped = True
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
            if self._atexit:
                atexit.unregister(self._atexit_stop)
                self._atexit = False
            self._release_lock()
        self.timings["stop"] = time.monotonic() - t0

    def _settle_before_stop(self):
        """Pacemaker does not shut down while a node awaits fencing (it
        retries fencing, then waits for shutdown-escalation, 20 min).  A
        remote node still unclean at the end (fencing made to fail, or a
        test that ends mid-way) is confirmed down by hand
        (``stonith_admin --confirm``: no fence agent call) so pacemakerd
        stops in seconds rather than being killed."""
        if not self._records("pacemakerd", alive=True):
            return
        try:
            xml = self.crm_mon_xml()
        except (ClusterError, etree.XMLSyntaxError,
                subprocess.TimeoutExpired):
            return
        for name in self.remotes:
            if (node_attrs(xml, name) or {}).get("unclean") == "true":
                try:
                    _run(["stonith_admin", "--confirm", name], timeout=15,
                         check=False)
                except subprocess.TimeoutExpired:
                    pass
        # A connection attempt to a dead remote daemon lasts until the
        # start timeout (20 s, "Connection refused without enough time to
        # retry"), and the controller's shutdown waits for it.  Starting
        # the daemon again lets such an attempt finish at once; the daemon
        # is then stopped by PID like the others.
        for name in self.remotes:
            if not self._records(name, alive=True):
                try:
                    self._start_remote(name)
                except (OSError, ClusterError):
                    pass

    def _stop_process(self, rec, sig, timeout):
        """Signal one recorded process, wait up to TIMEOUT, then SIGKILL.
        Returns True if it had to be killed."""
        pid, start = rec["pid"], rec["starttime"]
        if not pid_alive(pid, start):
            self._reap(pid)
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        if self._wait_gone(pid, start, timeout):
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self._wait_gone(pid, start, 10)
        sys.stderr.write(
            f"live cluster: {rec['key']} (PID {pid}) needed SIGKILL\n")
        return True

    def _reap(self, pid):
        popen = self._popens.get(pid)
        if popen is not None:
            try:
                popen.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass

    def _wait_gone(self, pid, start, timeout):
        deadline = time.monotonic() + timeout
        popen = self._popens.get(pid)
        while time.monotonic() < deadline:
            if popen is not None:
                try:
                    popen.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            if not pid_alive(pid, start):
                return True
            if popen is None:
                time.sleep(0.05)
        return not pid_alive(pid, start)

    def _teardown(self, state):
        """Undo everything STATE records; usable on a stale state too."""
        errors = []
        procs = state.get("processes", [])
        order = (
            [("pacemakerd", signal.SIGTERM, self.stop_timeout)],
            [("pacemakerd-child", signal.SIGTERM, 5)],
            [(p["key"], signal.SIGTERM, 5) for p in procs
             if p["key"] not in ("pacemakerd", "pacemakerd-child",
                                 "corosync")],
            [("corosync", signal.SIGTERM, 10)])
        for group in order:
            for key, sig, timeout in group:
                for rec in procs:
                    if rec["key"] == key:
                        try:
                            self._stop_process(rec, sig, timeout)
                        except Exception as exc:  # noqa: BLE001
                            errors.append(f"stop {rec}: {exc}")
        for rec in procs:
            if pid_alive(rec["pid"], rec["starttime"]):
                errors.append(f"still alive: {rec}")
        for veth in state.get("veths", []):
            if subprocess.run(["ip", "link", "show", veth],
                              capture_output=True).returncode == 0:
                proc = _run(["ip", "link", "del", veth], check=False)
                if proc.returncode:
                    errors.append(proc.stderr.strip())
        for ns in state.get("netns", []):
            if ns in _run(["ip", "netns", "list"]).stdout.split():
                proc = _run(["ip", "netns", "del", ns], check=False)
                if proc.returncode:
                    errors.append(proc.stderr.strip())
        for path in state.get("installed", []):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for directory in state.get("cleaned_dirs", []):
            for entry in os.listdir(directory):
                path = os.path.join(directory, entry)
                if os.path.isfile(path) or os.path.islink(path):
                    os.unlink(path)
        for backup in state.get("backups", []):
            try:
                shutil.copy2(backup["backup"], backup["path"])
                os.chown(backup["path"], backup["uid"], backup["gid"])
                os.chmod(backup["path"], backup["mode"])
            except OSError as exc:
                errors.append("restore {}: {}".format(backup["path"], exc))
        for entry in state.get("dir_modes", []):
            try:
                os.chown(entry["path"], entry["uid"], entry["gid"])
                os.chmod(entry["path"], entry["mode"])
            except OSError as exc:
                errors.append("restore {}: {}".format(entry["path"], exc))
        for directory in reversed(state.get("created_dirs", [])):
            try:
                os.rmdir(directory)
            except OSError:
                pass
        if errors:
            raise ClusterError("live cluster teardown: " + "; ".join(errors))


def parse_completed(value):
    """``completed`` of a fence_event as epoch seconds (None if absent).
    Pacemaker 2.1.5 writes UTC with seconds: "2026-11-21 06:09:57Z"."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+0000"
    text = re.sub(r"\s*([+-]\d\d):?(\d\d)$", r" \1\2", text)
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f %z"):
        try:
            return datetime.datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unknown fence_event time format: {value!r}")
