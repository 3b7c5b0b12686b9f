"""The agent's watchdog against a real (embedded) Mistral, in a stall that
a kill -9 leaves behind: a with-items task still RUNNING after all its
per-VM runs finished (their completions died with the process).  The
stall is made by writing that state into the server's database; the rest
is Mistral's own API, the real workflows and the simulated cloud."""

import datetime
import logging
import sqlite3

import fake_pacemaker

from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import watchdog
from instance_ha.simcloud import testing

FENCED_AT = datetime.datetime(2026, 11, 21, 9, 0, 0,
                              tzinfo=datetime.timezone.utc)


def finished(client, execution_id):
    execution = client.executions.get(execution_id)
    return execution if execution.state in ("SUCCESS", "ERROR") else None


def test_a_with_items_task_left_running_is_restarted(
        simcloud_factory, tmp_path, caplog):
    from instance_ha import mistral_client
    from instance_ha import server_process

    sim = simcloud_factory({
        "settings": {"evacuation_time": 0.3, "power_time": 0.05},
        "hosts": [{"name": "compute1", "servers": [
                      {"name": "vm1"}, {"name": "vm2"}]},
                  {"name": "compute2"}]})
    clouds = tmp_path / "clouds.yaml"
    server_process.write_clouds_yaml(clouds, sim.clouds())
    pacemaker = fake_pacemaker.FakePacemaker(str(tmp_path / "pacemaker"))
    pacemaker.show(node="compute1")
    server = server_process.ServerProcess(
        str(tmp_path), env=dict(server_process.cloud_env(str(clouds)),
                                **pacemaker.env))
    server.start()
    try:  # stopped, then killed, by its PID whatever happens
        client = mistral_client.connect(mistral_url=server.url)
        sim.cloud.kill_host("compute1")
        conf = config_module.AgentConfig(mistral_url=server.url,
                                         watchdog_timeout=900)
        first = handoff.start(client, "compute1", FENCED_AT, 0,
                              conf.workflow, True, "test")
        done = testing.wait_for(lambda: finished(client, first.id), 120,
                                what="the first run")
        assert done.state == "SUCCESS", done.state_info
        assert sorted(sim.cloud.calls.accepted_evacuations().values()) == \
            [1, 1]

        # The process died after the per-VM runs committed their end but
        # before their completions reached evacuate_servers.
        with sqlite3.connect(server.db) as db:
            db.execute("UPDATE task_executions_v2 SET state = 'RUNNING' "
                       "WHERE workflow_execution_id = ? AND name = ?",
                       (first.id, "evacuate_servers"))
            db.execute("UPDATE workflow_executions_v2 SET state = 'RUNNING' "
                       "WHERE id = ?", (first.id,))
        assert client.executions.get(first.id).state == "RUNNING"

        later = datetime.datetime.now(datetime.timezone.utc)
        caplog.set_level(logging.INFO, logger="test.watchdog")
        dog = watchdog.Watchdog(
            client, conf, logging.getLogger("test.watchdog"), "test",
            clock=lambda: later,
            fenced_now=lambda e: (True, "compute1 fenced"))
        entry = watchdog.new_entry("compute1", FENCED_AT, "compute1@x", 0,
                                   first.id, later)
        dog.check(entry)
        assert entry["attempt"] == 0  # just finished: not judged yet

        later += watchdog.NEVER_COMPLETED_TASK_AGE
        dog.check(entry)
        assert "has 1 task(s) whose sub-workflows or actions all " \
            "finished but which were never completed (evacuate_servers " \
            in caplog.text
        assert client.executions.get(first.id).state == "ERROR"
        second_id = handoff.execution_id("compute1", FENCED_AT, 1)
        assert entry["execution_id"] == second_id
        second = testing.wait_for(lambda: finished(client, second_id), 120,
                                  what="the second run")
        assert second.state == "SUCCESS", second.state_info
        # The second run found the VMs moved: nothing evacuated twice.
        assert sorted(sim.cloud.calls.accepted_evacuations().values()) == \
            [1, 1]
        assert sim.cloud.servers_on("compute1") == []
    finally:
        server.stop(timeout=20)
        server.kill()
