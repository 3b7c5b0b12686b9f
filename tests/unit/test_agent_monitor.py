"""One monitor pass of the agent (instance_ha.agent.monitor) on crm_mon
captures of a live cluster (tests/unit/hostmonitor/fixtures/live and the
agent's own capture), with an in-memory Mistral and CIB store."""

import datetime
import json
import logging
import os
import time

import pytest
import requests
from mistralclient.api import base as mistral_base

from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import monitor
from instance_ha.agent import statefile
from instance_ha.hostmonitor import crm_mon
from instance_ha.hostmonitor import store as store_module
from instance_ha.hostmonitor import trigger

HERE = os.path.dirname(os.path.abspath(__file__))
LIVE = os.path.join(HERE, "hostmonitor", "fixtures", "live")
SIMULATED = os.path.join(HERE, "hostmonitor", "fixtures", "crm_mon")
AGENT_FIXTURES = os.path.join(HERE, "agent_fixtures")
# crm_mon_fencing_succeeded.xml: rn1 fenced (reboot) at this instant.
FENCED_AT = datetime.datetime(2026, 11, 21, 6, 19, 38,
                              tzinfo=datetime.timezone.utc)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def live(name):
    return crm_mon.read_file(os.path.join(LIVE, name))


# Mistral's [api] max_limit: no list answer holds more items.
MISTRAL_MAX_LIMIT = 1000


def mistral_page(items, marker="", limit=None):
    """A page as Mistral's list API gives it: ordered by created_at (then
    id), the items after the marker's, at most limit and max_limit."""
    items = sorted(items, key=lambda i: (i.created_at or "", i.id))
    if marker:
        ids = [i.id for i in items]
        items = items[ids.index(marker) + 1:]
    return items[:min(limit or MISTRAL_MAX_LIMIT, MISTRAL_MAX_LIMIT)]


class Execution:
    def __init__(self, body, state="RUNNING", created_at="", root=None):
        self.id = body["id"]
        self.workflow_name = body.get("workflow_name")
        self.description = body.get("description")
        self.input = body.get("input")
        self.state = state
        self.state_info = None
        self.output = "{}"
        self.created_at = created_at
        self.updated_at = created_at
        self.root_execution_id = root


class FakeExecutions:
    """Mistral's executions API as the agent uses it: a repeated id
    returns the existing execution."""

    def __init__(self):
        self.items = {}
        self.posts = []
        self.updates = []
        self.children = {}
        self.lists = []
        self.unreachable = False
        self.tick = 0

    def _check(self):
        if self.unreachable:
            raise requests.ConnectionError("connection refused")

    def _create(self, url, body):
        self._check()
        assert url == "/executions"
        self.posts.append(body)
        if body["id"] not in self.items:
            self.tick += 1
            self.items[body["id"]] = Execution(
                body, created_at=f"2026-11-21 07:00:{self.tick:02d}")
        return self.items[body["id"]]

    def get(self, execution_id):
        self._check()
        if execution_id not in self.items:
            raise mistral_base.APIException(404, "Execution not found")
        return self.items[execution_id]

    def list(self, root_execution_id=None, marker="", limit=None,
             **filters):
        self._check()
        self.lists.append(dict(filters, root_execution_id=root_execution_id,
                               marker=marker, limit=limit))
        return mistral_page(self.children.get(root_execution_id, []),
                            marker, limit)

    def update(self, execution_id, state):
        self._check()
        self.updates.append((execution_id, state))
        for execution in [self.items.get(execution_id)] + [
                c for kids in self.children.values() for c in kids]:
            if execution is not None and execution.id == execution_id:
                execution.state = state

    def created(self):
        return list(self.items)


class Task:
    def __init__(self, name, execution_id, state="IDLE",
                 created_at="2026-11-21 06:20:00"):
        self.id = f"task-{name}"
        self.name = name
        self.workflow_execution_id = execution_id
        self.state = state
        self.created_at = created_at
        self.updated_at = created_at


class FakeTasks:
    """GET /v2/executions/ID/tasks, and GET /v2/tasks?state=... (every
    execution's tasks, cut at max_limit as Mistral does)."""

    def __init__(self):
        self.items = []
        self.calls = []

    def list(self, workflow_execution_id=None, marker="", limit=None,
             **filters):
        self.calls.append(dict(filters, marker=marker, limit=limit,
                               workflow_execution_id=workflow_execution_id))
        if workflow_execution_id:
            found = [t for t in self.items
                     if t.workflow_execution_id == workflow_execution_id]
        else:
            found = [t for t in self.items
                     if t.state == filters.get("state", t.state)]
        return mistral_page(found, marker, limit)


class FakeClient:
    def __init__(self):
        self.executions = FakeExecutions()
        self.tasks = FakeTasks()


class FakeStore:
    def __init__(self):
        self.records = {}
        self.broken = False
        self.cleared = []

    def _check(self):
        if self.broken:
            raise store_module.StoreError("cibadmin: exit status 102")

    def all(self):
        self._check()
        return dict(self.records)

    def record(self, handoff_record):
        self._check()
        self.records[handoff_record.host] = handoff_record

    def clear(self, host):
        self._check()
        self.cleared.append(host)
        self.records.pop(host, None)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


class Harness:
    def __init__(self, caplog, **params):
        environ = {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2"}
        environ.update({f"OCF_RESKEY_{k}": str(v)
                        for k, v in params.items()})
        self.config = config_module.from_environ(environ)
        self.client = FakeClient()
        self.store = FakeStore()
        self.clock = Clock(FENCED_AT + datetime.timedelta(seconds=2))
        self.status = None
        self.connect_error = None
        self.state = statefile.empty()
        self.log = logging.getLogger("test.agent")
        caplog.set_level(logging.DEBUG, logger="test.agent")
        self.caplog = caplog

    def connect(self):
        if self.connect_error:
            raise self.connect_error
        return self.client

    def run(self, status=None):
        if status is not None:
            self.status = status
        deps = monitor.Dependencies(
            self.config, self.log, clock=self.clock,
            read=lambda: self.status, store=self.store,
            connect=self.connect, origin="test")
        result = monitor.run(self.state, deps)
        # The state goes through JSON between two monitors.
        self.state = json.loads(json.dumps(self.state))
        return result

    @property
    def posts(self):
        return self.client.executions.posts

    def text(self):
        return self.caplog.text


@pytest.fixture
def agent(caplog):
    return lambda **params: Harness(caplog, **params)


def test_fenced_host_starts_one_execution_with_the_failure_id(agent):
    a = agent()
    a.clock.now = FENCED_AT - datetime.timedelta(seconds=30)
    a.run(live("crm_mon_all_online.xml"))  # seen online before the kill
    assert a.posts == []
    a.clock.now = FENCED_AT + datetime.timedelta(seconds=2)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    [body] = a.posts
    assert body["id"] == trigger.execution_id("rn1", FENCED_AT)
    assert body["workflow_name"] == "instance_ha.host_evacuate"
    assert json.loads(body["input"]) == {"search_opts": {"host": "rn1"},
                                         "fencing": {"node": "rn1"},
                                         "on_shared_storage": True}
    assert "password" not in json.dumps(body).lower()
    record = a.store.records["rn1"]
    assert record.execution_id == body["id"]
    assert record.failure == trigger.failure_key("rn1", FENCED_AT)
    # Later monitors: the record names this failure; nothing is posted.
    for _ in range(3):
        a.clock.advance(10)
        a.run()
    assert len(a.posts) == 1
    assert "evacuation handed to Mistral" in a.text()


def test_a_lost_record_still_gives_one_execution(agent):
    """A second controller, a restarted agent or an alert racing the
    monitor: no record, no state, the same id, the same execution."""
    first = agent()
    first.run(live("crm_mon_fencing_succeeded.xml"))
    second = agent()
    second.client = first.client  # the same Mistral
    second.store.broken = True  # and no CIB record to read
    second.run(live("crm_mon_fencing_succeeded.xml"))
    assert len(first.client.executions.posts) == 2
    assert first.client.executions.created() == [
        trigger.execution_id("rn1", FENCED_AT)]


def test_not_fenced_no_quorum_or_mass_failure_trigger_nothing(agent):
    a = agent()
    a.clock.now = FENCED_AT - datetime.timedelta(seconds=30)
    a.run(live("crm_mon_all_online.xml"))
    a.clock.now = FENCED_AT
    a.run(live("crm_mon_rn1_unclean.xml"))
    a.run(live("crm_mon_fencing_failed.xml"))
    a.run(live("crm_mon_rn1_fencing_failed.xml"))
    assert a.posts == []
    assert "fencing failed" in a.text() or "unclean" in a.text()
    b = agent()
    b.run(crm_mon.read_file(os.path.join(SIMULATED,
                                         "rn1-fenced-noquorum.xml")))
    assert b.posts == []
    assert "no quorum" in b.text()
    c = agent(threshold=0)  # 1 of 2 computes down is more than 0 %
    c.run(live("crm_mon_fencing_succeeded.xml"))
    assert c.posts == []
    assert "MASS FAILURE, NOTHING TRIGGERED" in c.text()


def test_the_reconnecting_remote_is_not_back_online(agent):
    """Captured live: after the fencing, the cluster retries the
    connection to the dead daemon and crm_mon shows rn1 online, its
    connection Started with the start pending.  The record must stay."""
    a = agent()
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert "rn1" in a.store.records
    reconnecting = crm_mon.read_file(os.path.join(
        AGENT_FIXTURES, "crm_mon_rn1_reconnecting_started.xml"))
    a.run(reconnecting)
    assert a.store.cleared == []
    assert "back online" not in a.text()


def test_unreachable_mistral_is_retried_at_the_next_monitor(agent):
    a = agent()
    a.connect_error = requests.ConnectionError("refused")
    assert a.run(live("crm_mon_fencing_succeeded.xml")) is not None
    assert a.posts == [] and a.store.records == {}
    assert "will retry at the next monitor" in a.text()
    a.connect_error = None
    a.client.executions.unreachable = True
    a.run()
    assert a.store.records == {}
    a.client.executions.unreachable = False
    a.run()
    assert len(a.client.executions.created()) == 1
    assert "rn1" in a.store.records


def test_unreadable_cluster_decides_nothing(agent, caplog):
    from instance_ha.hostmonitor import pcmk

    a = agent()

    def broken():
        raise pcmk.ClusterReadError("crm_mon: exit status 102")

    deps = monitor.Dependencies(a.config, a.log, clock=a.clock, read=broken,
                                store=a.store, connect=a.connect)
    assert monitor.run(a.state, deps) is None
    assert a.posts == []
    assert "cannot read the cluster" in caplog.text


def test_evacuation_delay(agent):
    a = agent(evacuation_delay=60)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert a.posts == []
    assert "evacuation starts after 60 s" in a.text()
    a.clock.advance(57)  # 59 s after the fencing
    a.run()
    assert a.posts == []
    a.clock.advance(1)
    a.run()
    assert len(a.posts) == 1


def test_debounce_waits_for_agreeing_monitors(agent):
    a = agent(debounce=2)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert a.posts == []
    a.clock.advance(10)
    a.run()
    assert len(a.posts) == 1


def test_back_online_clears_the_record(agent):
    a = agent()
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert "rn1" in a.store.records
    a.client.executions.items[a.posts[0]["id"]].state = "SUCCESS"
    a.clock.advance(10)
    a.run()  # the watchdog sees it finished
    a.clock.advance(30)
    a.run(live("crm_mon_rn1_back_online.xml"))
    assert a.store.cleared == ["rn1"]
    assert a.state["watch"] == {}
    assert "back online; handoff record cleared" in a.text()


def test_a_record_from_another_controller_is_watched(agent):
    """The agent moved here: the CIB record names attempt 2 of rn1's
    failure; this agent follows that execution, starts nothing new."""
    a = agent()
    attempt_1 = handoff.execution_id("rn1", FENCED_AT, 1)
    a.client.executions.items[attempt_1] = Execution(
        {"id": attempt_1}, state="RUNNING")
    a.store.records["rn1"] = store_module.Handoff(
        host="rn1", execution_id=attempt_1,
        failure=trigger.failure_key("rn1", FENCED_AT))
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert a.posts == []
    [entry] = a.state["watch"].values()
    assert entry["attempt"] == 1 and entry["execution_id"] == attempt_1


def unreadable():
    from instance_ha.hostmonitor import pcmk

    raise pcmk.ClusterReadError("crm_mon: exit status 102")


def test_a_host_back_online_stops_the_watch_of_its_stalled_run(agent):
    """Probe: rn1 back online, then 901 s without progress: no second
    run (it would force a live host's nova-compute down)."""
    a = agent(watchdog_timeout=900)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert len(a.posts) == 1
    a.clock.advance(10)
    a.run(live("crm_mon_rn1_back_online.xml"))
    assert "back online while its recovery was not finished" in a.text()
    assert a.state["watch"] == {}
    for _ in range(2):
        a.clock.advance(901)
        a.run()
    assert len(a.posts) == 1
    assert a.client.executions.updates == []


def test_a_host_back_online_whose_run_ended_in_error_gets_no_new_run(agent):
    a = agent()
    a.run(live("crm_mon_fencing_succeeded.xml"))
    a.client.executions.items[a.posts[0]["id"]].state = "ERROR"
    a.clock.advance(10)
    a.run(live("crm_mon_rn1_back_online.xml"))
    a.clock.advance(10)
    a.run()
    assert len(a.posts) == 1
    assert "last outcome running" in a.text()


def test_an_unreadable_cluster_only_observes(agent):
    """Probe: crm_mon exits 102 twice, 901 s apart, the run stalled and
    then in error: nothing is failed or started until a read shows rn1
    failed and fenced for this failure again."""
    a = agent(watchdog_timeout=900)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    first = a.client.executions.items[a.posts[0]["id"]]
    deps = monitor.Dependencies(a.config, a.log, clock=a.clock,
                                read=unreadable, store=a.store,
                                connect=a.connect, origin="test")
    for _ in range(2):
        a.clock.advance(901)
        monitor.run(a.state, deps)
    assert a.client.executions.updates == [] and len(a.posts) == 1
    first.state = "ERROR"
    a.clock.advance(10)
    monitor.run(a.state, deps)
    assert len(a.posts) == 1
    assert "NOT starting recovery run 2/3" in a.text()
    assert "the cluster could not be read this time" in a.text()
    a.clock.advance(10)
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert [p["id"] for p in a.posts][-1] == handoff.execution_id(
        "rn1", FENCED_AT, 1)


def test_two_hosts_failing_at_once_are_gated_each_on_its_own(agent):
    from instance_ha.hostmonitor import fencing

    with open(os.path.join(HERE, "hostmonitor", "fixtures", "fence",
                           "all-rn1-rn2.xml"), "rb") as f:
        events = fencing.parse_history(f.read())
    both = crm_mon.read_file(os.path.join(
        SIMULATED, "rn1-rn2-fenced.xml")).with_fence_events(events)
    a = agent(threshold=100)
    a.run(both)
    assert sorted(json.loads(p["input"])["search_opts"]["host"]
                  for p in a.posts) == ["rn1", "rn2"]
    entries = {e["host"]: e for e in a.state["watch"].values()}
    a.client.executions.items[entries["rn1"]["execution_id"]].state = \
        "ERROR"
    a.clock.advance(10)
    a.run()
    assert len(a.posts) == 3 and a.posts[-1]["id"] == \
        handoff.execution_id("rn1", datetime.datetime.fromisoformat(
            entries["rn1"]["fenced_at"]), 1)
    # rn2's run fails while the cluster cannot be read: nothing starts.
    a.client.executions.items[entries["rn2"]["execution_id"]].state = \
        "ERROR"
    deps = monitor.Dependencies(a.config, a.log, clock=a.clock,
                                read=unreadable, store=a.store,
                                connect=a.connect, origin="test")
    monitor.run(a.state, deps)
    assert len(a.posts) == 3
    a.run(both)
    assert len(a.posts) == 4
    assert json.loads(a.posts[-1]["input"])["search_opts"] == \
        {"host": "rn2"}


def test_node_names_map_to_nova_hosts_and_recovery_inputs_pass_on(agent):
    a = agent(host_map="rn1=compute1.example.com rn9=x",
              recovery_method="reserved_host", reserved_hosts="spare1 spare2",
              policy='{"evacuate": "tagged"}', concurrency="20",
              restart_groups="db, app")
    a.run(live("crm_mon_fencing_succeeded.xml"))
    [body] = a.posts
    # The failure keeps the Pacemaker node's name; Nova gets its own.
    assert body["id"] == trigger.execution_id("rn1", FENCED_AT)
    assert json.loads(body["input"]) == {
        "search_opts": {"host": "compute1.example.com"},
        "fencing": {"node": "rn1"},
        "on_shared_storage": True, "recovery_method": "reserved_host",
        "reserved_hosts": ["spare1", "spare2"],
        "policy": {"evacuate": "tagged"}, "concurrency": 20,
        "restart_groups": ["db", "app"]}
    # The watchdog's next run carries the same input.
    a.client.executions.items[body["id"]].state = "ERROR"
    a.clock.advance(10)
    a.run()
    assert json.loads(a.posts[-1]["input"]) == json.loads(body["input"])
    assert a.posts[-1]["id"] != body["id"]


def test_a_host_suffix_makes_the_nova_host_name(agent):
    a = agent(host_suffix=".localdomain")
    a.run(live("crm_mon_fencing_succeeded.xml"))
    assert json.loads(a.posts[0]["input"])["search_opts"] == {
        "host": "rn1.localdomain"}


def test_an_inferred_fencing_goes_to_every_run_as_an_override(agent):
    """infer_fencing: no fence history, cn3 seen lost then clean.  The
    workflow cannot check that with Pacemaker, so the first run and the
    watchdog's next one carry an override that says how it was known."""
    def members(name):
        return crm_mon.read_file(os.path.join(SIMULATED, name + ".xml"))

    a = agent(computes="cn2 cn3", infer_fencing="true")
    a.run(members("members-online"))
    a.clock.advance(5)
    a.run(members("members-cn3-lost"))
    a.clock.advance(5)
    a.run(members("members-cn3-fenced"))
    assert a.posts == []  # seen clean at this read: inferred at the next
    a.clock.advance(5)
    a.run()
    assert len(a.posts) == 1
    override = {"override": "fencing of cn3 inferred by the agent (seen "
                            "lost, then clean; no fence history)"}
    assert json.loads(a.posts[0]["input"])["fencing"] == override
    a.client.executions.items[a.posts[0]["id"]].state = "ERROR"
    a.clock.advance(10)
    a.run()
    assert len(a.posts) == 2
    assert json.loads(a.posts[1]["input"])["fencing"] == override


def test_a_quiet_pass_does_not_load_the_mistral_client():
    """Every host online, nothing watched: the pass reads Pacemaker and
    the CIB records only, and the OCF agent's process never imports
    python-mistralclient (instance_ha.agent.monitor imports it where it
    talks to Mistral)."""
    import subprocess
    import sys

    code = (
        "import logging, sys\n"
        "from instance_ha.agent import config, monitor, statefile\n"
        "from instance_ha.hostmonitor import crm_mon\n"
        "status = crm_mon.read_file(sys.argv[1])\n"
        "class Store:\n"
        "    def all(self):\n"
        "        return {}\n"
        "deps = monitor.Dependencies(\n"
        "    config.from_environ({'OCF_RESKEY_mistral_url': "
        "'http://127.0.0.1:9/v2'}),\n"
        "    logging.getLogger('quiet'), read=lambda: status, store=Store(),\n"
        "    origin='test')\n"
        "state = statefile.empty()\n"
        "assessment = monitor.run(state, deps)\n"
        "assert assessment.verdict('rn1').decision == 'online'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(\n"
        "    ('mistralclient', 'instance_ha.mistral_client')))\n"
        "assert not loaded, loaded\n")
    result = subprocess.run(
        [sys.executable, "-c", code,
         os.path.join(LIVE, "crm_mon_all_online.xml")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
