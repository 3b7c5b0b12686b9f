"""The chaos tier's distributed topology: the deployment of
bench/distributed.py (stock Mistral on MariaDB + RabbitMQ, two
engine+executor processes and one API, shared with ``python -m bench
--distributed``), its executors reading the fake Pacemaker of the run,
and what a chaos run does to it: kill one engine+executor, start a new
one in its place before the next run."""

import os
import sys
import time

import chaos_harness

# The repository root, for the bench package (absent from sys.path when
# pytest runs with PYTHONSAFEPATH, as tox does); appended, so that the
# installed instance-ha keeps its place.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.append(_REPO)

from bench import distributed as _shared  # noqa: E402

Unavailable = _shared.Unavailable
MistralProcess = _shared.MistralProcess
ensure_services = _shared.ensure_services
mistral_conf = _shared.mistral_conf


class DistributedDeployment(_shared.DistributedDeployment):
    """engine+executor A and B, API; the pack's workflows installed; one
    engine+executor killed per run."""

    def __init__(self):
        super().__init__(name="chaos", keep=bool(os.environ.get(
            "CHAOS_KEEP")))
        self.victim = None
        self._replacing = False

    def _env(self):
        return {**super()._env(),
                **chaos_harness.pacemaker(self.workdir).env}

    def start_replacements(self):
        """Start a new engine+executor for each dead one, without waiting:
        called as soon as a run's outcome is final, so that the next run
        only waits for what is left of its start-up."""
        for index, engine in enumerate(self.engines):
            if not engine.alive():
                engine.stop()
                self.engines[index] = self._engine(
                    f"{engine.name.split('-')[2][0]}{int(time.time())}")
                self._replacing = True

    def replace_dead_engines(self):
        """Before a run: two live engine+executor sets again."""
        self.start_replacements()
        if self._replacing:
            self.wait_engines(300)
            self._replacing = False

    def choose_victim(self, rng):
        self.victim = rng.choice(self.engines)
        return self.victim

    def kill_victim(self):
        return self.victim.kill()

    def after_kill(self):
        """The other engine+executor carries on; nothing is restarted."""
