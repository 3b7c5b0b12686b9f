"""The agent's handoff and watchdog against a real embedded Mistral
(``instance-ha server`` as a child process) running the real
``instance_ha.host_evacuate`` on the simulated cloud."""

import datetime
import logging
import os
import shutil
import tempfile
import time

import fake_pacemaker
import pytest

from instance_ha import mistral_client
from instance_ha import server_process
from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import watchdog
from instance_ha.hostmonitor import store
from instance_ha.hostmonitor import trigger
from instance_ha.simcloud import testing

FENCED_AT = datetime.datetime(2026, 11, 21, 7, 0, 0,
                              tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def cloud_and_mistral():
    from instance_ha.simcloud import server as simcloud_server
    from instance_ha.simcloud import topology

    workdir = tempfile.mkdtemp(prefix="instance-ha-agent-mistral-")
    # Evacuations that take 10 minutes: the per-VM runs sit in their
    # wait, and nothing in Mistral moves; a stalled run, as the watchdog
    # sees one after an engine died mid with-items.
    sim = simcloud_server.SimCloud(topology.build({
        "settings": {"evacuation_time": 600},
        "hosts": [
            {"name": "rn1", "servers": [
                {"name": "vm1", "vm_state": "active"},
                {"name": "vm2", "vm_state": "active"}]},
            {"name": "rn2"}]})).start()
    clouds_yaml = server_process.write_clouds_yaml(
        os.path.join(workdir, "clouds.yaml"), sim.clouds())
    pacemaker = fake_pacemaker.FakePacemaker(os.path.join(workdir, "pcmk"))
    pacemaker.show(node="rn1")
    server = server_process.ServerProcess(
        workdir, env=dict(server_process.cloud_env(clouds_yaml),
                          **pacemaker.env))
    try:
        server.start()
        client = mistral_client.connect(mistral_url=server.url)
        yield sim, client
    finally:
        # Actions still wait on 10-minute evacuations: no need to wait.
        server.stop(timeout=5)
        server.kill()
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def config(**overrides):
    return config_module.AgentConfig(mistral_url="http://unused/v2",
                                     **overrides)


def wait(predicate, timeout, what):
    return testing.wait_for(predicate, timeout, interval=0.5, what=what)


def test_repeated_starts_land_on_one_execution(cloud_and_mistral):
    """Two controllers (or the monitor and an alert-woken probe) start
    the same failure: Mistral keeps one execution."""
    sim, client = cloud_and_mistral
    host, fenced_at = "rn2", FENCED_AT
    first = handoff.start(client, host, fenced_at, 0,
                          trigger.WORKFLOW, True, "controller A")
    again = handoff.start(client, host, fenced_at, 0,
                          trigger.WORKFLOW, True, "controller B")
    assert first.id == again.id == trigger.execution_id(host, fenced_at)
    mine = [e for e in client.executions.list(
        workflow_name=trigger.WORKFLOW, limit=1000)
        if (e.description or "").startswith(
            f"{trigger.DESCRIPTION_PREFIX}{host} (")]
    assert [e.id for e in mine] == [first.id]
    assert "controller A" in mine[0].description
    assert store.find_execution(client, host, fenced_at).id == first.id
    wait(lambda: client.executions.get(first.id).state != "RUNNING", 60,
         "the empty host's run to end")


def running_batch(client, execution_id):
    """The run's batch of VMs (evacuate_servers' action), once running."""
    for task in client.tasks.list(execution_id):
        if task.name == "evacuate_servers":
            return [a for a in client.action_executions.list(task.id)
                    if a.state == "RUNNING"]
    return []


def test_watchdog_fails_a_stalled_run_and_starts_the_next(
        cloud_and_mistral, caplog):
    sim, client = cloud_and_mistral
    sim.cloud.kill_host("rn1")
    conf = config(watchdog_timeout=4, max_attempts=2)
    first = handoff.start(client, "rn1", FENCED_AT, 0, conf.workflow, True,
                          "test")
    # The VMs' batch starts and then sits in its wait.
    wait(lambda: running_batch(client, first.id), 60, "the VMs' batch")
    caplog.set_level(logging.INFO, logger="test.agent.mistral")
    log = logging.getLogger("test.agent.mistral")
    recorded = []
    dog = watchdog.Watchdog(client, conf, log, "test",
                            record=recorded.append,
                            fenced_now=lambda e: (True, "rn1 fenced"))
    entry = watchdog.new_entry("rn1", FENCED_AT, "rn1@x", 0, first.id,
                               dog.clock())
    started = time.monotonic()
    while entry["attempt"] == 0:
        assert time.monotonic() - started < 60, entry
        dog.check(entry)
        time.sleep(1)
    print(f"\nstall detected and run restarted "
          f"{time.monotonic() - started:.1f}s after the watch began")
    # The stuck run is ERROR in Mistral.
    assert client.executions.get(first.id).state == "ERROR"
    # The next run has the next deterministic id and is running the
    # level-triggered workflow again for the same host.
    second_id = handoff.execution_id("rn1", FENCED_AT, 1)
    assert entry["execution_id"] == second_id
    assert recorded[-1]["execution_id"] == second_id
    second = client.executions.get(second_id)
    assert second.state in ("RUNNING", "SUCCESS", "ERROR")
    assert "attempt 2" in second.description
    assert "made no progress" in caplog.text
    # It stalls as well (the evacuations still take 10 minutes): with
    # max_attempts=2 the watchdog gives up and says an operator must act.
    wait(lambda: running_batch(client, second_id), 60,
         "the second run's batch")
    started = time.monotonic()
    while entry["outcome"] != "EXHAUSTED":
        assert time.monotonic() - started < 60, entry
        dog.check(entry)
        time.sleep(1)
    assert "OPERATOR ACTION NEEDED" in caplog.text
    assert client.executions.get(second_id).state == "ERROR"
    # No third run.
    third_id = handoff.execution_id("rn1", FENCED_AT, 2)
    assert store.find_execution(client, "rn1").id == second_id
    with pytest.raises(mistral_client.mistral_base.APIException):
        client.executions.get(third_id)
    # Each VM was evacuated once: the second run looked before acting.
    evacuations = sim.cloud.calls.accepted_evacuations()
    assert sorted(evacuations.values()) == [1, 1]


def test_the_watchdog_pages_through_mistral_lists(cloud_and_mistral,
                                                  monkeypatch):
    """The watchdog's marker paging (watchdog.read_all) against Mistral's
    own API, one item a page: the same items, in the same order, as one
    list of them all."""
    sim, client = cloud_and_mistral
    runs = [handoff.start(client, "rn2", FENCED_AT + datetime.timedelta(
        hours=n), 0, trigger.WORKFLOW, True, "paging") for n in (1, 2)]
    for run in runs:
        wait(lambda run=run: client.executions.get(run.id).state
             != "RUNNING", 60, "the empty host's run to end")
    monkeypatch.setattr(watchdog, "PAGE", 1)
    everything = client.executions.list(workflow_name=trigger.WORKFLOW,
                                        limit=1000)
    assert len(everything) >= 2
    assert [e.id for e in watchdog.read_all(
        client.executions.list, workflow_name=trigger.WORKFLOW)] == \
        [e.id for e in everything]
    tasks = client.tasks.list(workflow_execution_id=runs[0].id, limit=1000)
    assert len(tasks) >= 2
    assert [t.id for t in watchdog.read_all(
        client.tasks.list, workflow_execution_id=runs[0].id)] == \
        [t.id for t in tasks]
