"""Which instance-ha code a bench run measures.

By default a snapshot of the committed HEAD (``git archive``), laid out as
pyproject.toml installs it (``actions/`` as ``instance_ha.actions``,
``workflows/`` as ``instance_ha.workflows`` ...), put first on sys.path of
the bench and, through PYTHONPATH, of the embedded Mistral it starts.
A snapshot keeps uncommitted changes out of the measurement and names the
commit measured.
``--worktree`` measures the work tree as it is instead.

The action classes are found through the ``mistral.actions`` entry points
of the installed (editable) package; they name modules, which resolve to
the snapshot.  This module imports nothing of instance-ha.
"""

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile

# pyproject.toml's package-dir: directory in the repository -> package;
# then simcloud/pyproject.toml's (the simulated cloud, its own distribution,
# imported as instance_ha.simcloud; older revisions have it in instance_ha/).
LAYOUT = {"instance_ha": "instance_ha",
          "actions": "instance_ha/actions",
          "workflows": "instance_ha/workflows",
          "hostmonitor": "instance_ha/hostmonitor",
          "resource_agents": "instance_ha/resource_agents",
          "simcloud/src": "instance_ha_simcloud"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Source:
    def __init__(self, worktree=False, revision="HEAD"):
        self.worktree = worktree
        self.revision = revision
        self.commit = None
        self.dirty = None
        self.path = None
        self._tmp = None

    def prepare(self):
        self.commit = _git("rev-parse", "--short", self.revision)
        status = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain",
             "--untracked-files=no"], check=True, capture_output=True,
            text=True).stdout
        self.dirty = sorted(line[3:] for line in status.splitlines()
                            if line.strip())
        if self.worktree:
            return self
        self._tmp = tempfile.mkdtemp(prefix="instance-ha-bench-src-")
        # Only the directories the revision has (git archive refuses a
        # path it lacks).
        present = _git("ls-tree", "--name-only", self.revision, "--",
                       *LAYOUT).split()
        archive = subprocess.run(
            ["git", "-C", REPO, "archive", "--format=tar", self.revision,
             *present], check=True, capture_output=True).stdout
        raw = os.path.join(self._tmp, "raw")
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(raw, filter="data")
        self.path = os.path.join(self._tmp, "site")
        for repo_dir, package_dir in LAYOUT.items():
            source = os.path.join(raw, repo_dir)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(self.path, package_dir),
                                dirs_exist_ok=True)
        sys.path.insert(0, self.path)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [self.path] + [p for p in os.environ.get("PYTHONPATH",
                                                     "").split(os.pathsep)
                           if p])
        return self

    def describe(self):
        return {"measured": "work tree" if self.worktree
                else f"snapshot of {self.revision}",
                "commit": self.commit, "snapshot_path": self.path,
                "work_tree_changes_not_measured": (
                    [] if self.worktree else self.dirty),
                "work_tree_changes_measured": (
                    self.dirty if self.worktree else [])}

    def cleanup(self):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def run_measured(args, body):
    """``body(args, source)`` on the prepared snapshot (``--worktree``,
    ``--revision``).  SIGTERM, and SIGINT even when a background shell
    ignored it, unwind, so that every server and runner started is stopped
    by its PID and the snapshot is removed."""
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    source = Source(worktree=args.worktree, revision=args.revision).prepare()
    try:
        return body(args, source)
    finally:
        source.cleanup()


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _git(*args):
    return subprocess.run(["git", "-C", REPO, *args], check=True,
                          capture_output=True, text=True).stdout.strip()
