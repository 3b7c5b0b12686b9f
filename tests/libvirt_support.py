"""A real libvirtd for the instance monitor's tests: Debian's libvirtd
started by the test (no systemd), by PID, with a private socket, running
tiny domains under TCG emulation (a domain that boots nothing is enough:
its qemu process runs until it is killed).

libvirtd runs in a mount namespace of its own where its qemu.conf is the
test's: qemu runs as root and writes its output to a file (no virtlogd).
With Debian's default (qemu as libvirt-qemu), a /dev/kvm that only root may
open makes libvirt probe every emulator's capabilities again at each
define, which costs about 30 s each time."""

import os
import signal
import subprocess
import uuid

from instance_ha.simcloud import testing

NOVA_NAMESPACE = "http://openstack.org/xmlns/libvirt/nova/1.1"
LIBVIRTD = "/usr/sbin/libvirtd"
QEMU_CONF = "/etc/libvirt/qemu.conf"
AUTOSTART_NETWORKS = "/etc/libvirt/qemu/networks/autostart"
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_RUN_DIR = "/run/libvirt/qemu"


def missing():
    """Why a real libvirtd cannot run here, or None."""
    if os.geteuid() != 0:
        return "a system libvirtd needs root"
    for path in (LIBVIRTD, QEMU_CONF, QEMU):
        if not os.path.exists(path):
            return (f"{path} is missing (Debian: libvirt-daemon-system "
                    "libvirt-daemon-driver-qemu qemu-system-x86)")
    return None


def wait_for(predicate, timeout=60.0, interval=0.1, what="condition"):
    return testing.wait_for(predicate, timeout=timeout, interval=interval,
                            what=what)


class Libvirtd:
    """libvirtd and virtlogd in the foreground, children of the test, with
    their sockets and logs in ``workdir``."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.sock_dir = os.path.join(self.workdir, "sock")
        self.uri = ("qemu+unix:///system?socket="
                    f"{self.sock_dir}/libvirt-sock")
        self.ro_uri = ("qemu+unix:///system?socket="
                       f"{self.sock_dir}/libvirt-sock-ro")
        self.processes = []
        self.domains = []

    def restart(self):
        """libvirtd stopped and started again; its domains keep running
        (libvirtd reconnects to their qemu processes)."""
        daemon = self.processes.pop()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        self._spawn(*self._libvirtd)
        wait_for(lambda: self._answers(), what="libvirtd answering again")

    def start(self):
        os.makedirs(self.sock_dir, exist_ok=True)
        config = os.path.join(self.workdir, "libvirtd.conf")
        with open(config, "w", encoding="utf-8") as stream:
            stream.write(f'unix_sock_dir = "{self.sock_dir}"\n'
                         'auth_unix_ro = "none"\nauth_unix_rw = "none"\n'
                         'log_outputs = "3:file:'
                         f'{self.workdir}/libvirtd.log"\n')
        qemu_conf = os.path.join(self.workdir, "qemu.conf")
        with open(qemu_conf, "w", encoding="utf-8") as stream:
            stream.write('user = "root"\ngroup = "root"\n'
                         'stdio_handler = "file"\n')
        # No network of libvirt's is started (the domains have no NIC):
        # its autostart directory is an empty one in the namespace.
        no_networks = os.path.join(self.workdir, "no-networks")
        os.makedirs(no_networks, exist_ok=True)
        # unshare and sh exec: the PID is libvirtd's own.
        self._libvirtd = (
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'mount --bind "$1" {QEMU_CONF} && '
             f'{{ [ ! -d {AUTOSTART_NETWORKS} ] || '
             f'mount --bind "$4" {AUTOSTART_NETWORKS}; }} && '
             f'exec {LIBVIRTD} -f "$2" -p "$3"', "sh", qemu_conf, config,
             f"{self.workdir}/libvirtd.pid", no_networks], "libvirtd")
        self._spawn(*self._libvirtd)
        wait_for(lambda: self._answers(), what="libvirtd answering")
        return self

    def _spawn(self, argv, name):
        log = open(os.path.join(self.workdir, f"{name}.out"), "ab")
        self.processes.append(subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL))
        log.close()

    def _answers(self):
        for process in self.processes:
            if process.poll() is not None:
                raise AssertionError(
                    f"libvirtd exited {process.returncode}:\n"
                    f"{self.log_tail()}")
        return subprocess.run(["virsh", "-c", self.uri, "version"],
                              capture_output=True).returncode == 0

    def log_tail(self):
        """libvirtd's output and the errors of its log; one libvirtd per
        machine holds /run/libvirt, so a second one says so there."""
        text = ""
        for name in ("libvirtd.out", "libvirtd.log"):
            path = os.path.join(self.workdir, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    text += "".join(line for line in f
                                    if name.endswith(".out")
                                    or " error : " in line)
        if "Failed to acquire pid file" in text:
            text += ("another libvirtd runs on this machine (it holds "
                     "/run/libvirt): stop it, the tests start their own\n")
        return text[-2000:]

    def remove_domains(self):
        for name in self.domains:
            self.virsh("destroy", name, check=False)
            self.virsh("undefine", name, check=False)
        self.domains.clear()

    def stop(self):
        self.remove_domains()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def virsh(self, *args, check=True):
        result = subprocess.run(["virsh", "-c", self.uri, *args],
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode:
            raise AssertionError(f"virsh {' '.join(args)}: "
                                 f"{result.stderr.strip()}")
        return result.stdout

    # -- domains -------------------------------------------------------------

    def define(self, server_id=None, nova=True):
        """A persistent domain, as Nova's libvirt driver defines one (its
        uuid is the instance's, Nova's metadata element in it); its
        name."""
        domain_uuid = server_id or str(uuid.uuid4())
        name = f"instance-ha-test-{domain_uuid[:8]}"
        metadata = (f'<metadata><nova:instance xmlns:nova="{NOVA_NAMESPACE}">'
                    f'<nova:name>{name}</nova:name></nova:instance>'
                    '</metadata>') if nova else ""
        xml = (f"<domain type='qemu'><name>{name}</name>"
               f"<uuid>{domain_uuid}</uuid>{metadata}"
               "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
               "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
               "<on_crash>destroy</on_crash>"
               f"<devices><emulator>{QEMU}</emulator></devices></domain>")
        path = os.path.join(self.workdir, f"{name}.xml")
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(xml)
        self.virsh("define", path)
        self.domains.append(name)
        return name

    def start_domain(self, name):
        self.virsh("start", name)

    def qemu_pid(self, name):
        with open(f"{QEMU_RUN_DIR}/{name}.pid", encoding="utf-8") as stream:
            return int(stream.read().strip())

    def kill_qemu(self, name):
        """``kill -9`` of the domain's qemu process: a crash."""
        os.kill(self.qemu_pid(name), signal.SIGKILL)
        wait_for(lambda: "shut off" in self.virsh("domstate", name),
                 what=f"{name} shut off")

    def state(self, name):
        return self.virsh("domstate", "--reason", name).strip()

