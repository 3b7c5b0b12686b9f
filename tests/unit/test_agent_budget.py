"""The monitor's time budget (instance_ha.agent.budget): 80 % of the
monitor timeout Pacemaker passes (OCF_RESKEY_CRM_meta_timeout, in
milliseconds), every request of the pass cut to the time left, and what a
pass leaves out when the budget is spent, against a Mistral on 127.0.0.1
that accepts connections and never answers."""

import json
import logging
import os
import re
import shutil
import socket
import threading

import pytest
import requests
from test_agent_monitor import LIVE
from test_agent_monitor import SIMULATED
from test_agent_monitor import Execution
from test_agent_monitor import FakeClient
from test_agent_monitor import FakeStore

from instance_ha import mistral_client
from instance_ha.agent import budget
from instance_ha.agent import config as config_module
from instance_ha.agent import handoff
from instance_ha.agent import monitor
from instance_ha.agent import ocf
from instance_ha.agent import statefile
from instance_ha.agent import watchdog
from instance_ha.hostmonitor import crm_mon
from instance_ha.hostmonitor import fencing
from instance_ha.hostmonitor import store as store_module
from instance_ha.hostmonitor import trigger

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "hostmonitor", "fixtures")


class HungMistral:
    """Accepts every connection on 127.0.0.1 and never answers; keeps the
    request line each one sent."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v2"
        self.connections = []
        self.requests = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)
            conn.settimeout(5)
            try:
                first = conn.recv(65536).split(b"\r\n", 1)[0].decode()
            except OSError:
                first = ""
            self.requests.append(first)

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        for conn in self.connections:
            conn.close()
        self.listener.close()


@pytest.fixture
def hung():
    server = HungMistral()
    yield server
    server.close()


def fenced_cluster(*extra):
    """rn1 and rn2 failed and fenced (fixtures rn1-rn2-fenced and
    all-rn1-rn2), and each of ``extra`` as rn2 is."""
    with open(os.path.join(SIMULATED, "rn1-rn2-fenced.xml")) as f:
        xml = f.read()
    with open(os.path.join(FIXTURES, "fence", "all-rn1-rn2.xml")) as f:
        history = f.read()
    for pattern in (r'\n *<node name="rn2" [^\n]*',
                    r'\n *<resource id="rn2" [^\n]*',
                    r'\n *<resource_history id="rn2".*?</resource_history>',
                    r'\n *<failure op_key="rn2_[^\n]*'):
        block = re.search(pattern, xml, re.S).group(0)
        xml = xml.replace(block, block + "".join(
            block.replace("rn2", name) for name in extra))
    event = re.search(r'\n *<fence_event [^\n]*target="rn2"[^\n]*',
                      history).group(0)
    history = history.replace(event, event + "".join(
        event.replace("rn2", name) for name in extra))
    return crm_mon.parse(xml.encode(), "rn1-rn2-fenced+").with_fence_events(
        fencing.parse_history(history.encode()))


HOSTS = ("rn1", "rn2", "rn4", "rn5")


def watched(status, store):
    """A state whose watch holds the first run of each host's failure,
    each recorded in ``store``: a pass has nothing to hand over."""
    from instance_ha.hostmonitor import decision

    state = statefile.empty()
    assessment = decision.assess(status, decision.Policy(
        threshold_percent=100))
    for host in HOSTS:
        fenced_at = assessment.verdict(host).fenced_at
        failure = trigger.failure_key(host, fenced_at)
        entry = watchdog.new_entry(host, fenced_at, failure, 0,
                                   handoff.execution_id(host, fenced_at),
                                   fenced_at)
        state["watch"][failure] = entry
        store.record(store_module.Handoff(
            host=host, execution_id=entry["execution_id"], failure=failure))
    return state


def agent_environ(tmp_path, url, **params):
    environ = {"HA_RSCTMP": str(tmp_path), "OCF_RESOURCE_INSTANCE": "t1",
               "OCF_RESKEY_mistral_url": url, "OCF_RESKEY_threshold": "100"}
    environ.update({f"OCF_RESKEY_{k}": str(v) for k, v in params.items()})
    return environ


def test_a_hung_mistral_cannot_make_a_monitor_overrun_its_budget(
        hung, tmp_path, caplog):
    """Four watched failures, a Mistral that never answers, a monitor
    timeout of 2.5 s and request_timeout 30: the first request is cut
    to the 2 s budget, the three other failures are not asked about,
    the monitor returns 0; the next one asks first about one left out."""
    status, records = fenced_cluster("rn4", "rn5"), FakeStore()
    environ = agent_environ(tmp_path, hung.url, request_timeout=30,
                            CRM_meta_timeout=2500)
    path = statefile.path(environ)
    statefile.save(path, watched(status, records))
    log = logging.getLogger("test.budget")
    caplog.set_level(logging.INFO, logger="test.budget")

    def deps(config, log, budget):
        return monitor.Dependencies(config, log, budget=budget,
                                    read=lambda: status, store=records)

    assert ocf.monitor(environ, log, deps_factory=deps) == ocf.OCF_SUCCESS
    [first] = hung.requests
    entries = statefile.load(path)["watch"].values()
    asked = [e for e in entries if first.startswith(
        f"GET /v2/executions/{e['execution_id']} ")]
    assert [e["checked_in"] for e in asked] == [1]
    left = [e for e in entries if e not in asked]
    assert len(left) == 3 and all(e.get("checked_in") is None
                                  for e in left)
    assert "the monitor's budget of 2 s is spent; 3 watched failure(s) " \
        "not checked this pass (the next one checks them first): " + \
        ", ".join(f"{e['host']} (execution {e['execution_id']})"
                  for e in left) in caplog.text
    assert "request_timeout=30 does not fit the monitor timeout of 2.5 s" \
        in caplog.text
    # The next monitor: a failure left out comes first.
    assert ocf.monitor(environ, log, deps_factory=deps) == ocf.OCF_SUCCESS
    assert len(hung.requests) == 2
    assert hung.requests[1] == \
        f"GET /v2/executions/{left[0]['execution_id']} HTTP/1.1"
    # Said once, not at every monitor.
    assert caplog.text.count("request_timeout=30 does not fit") == 1


def test_new_failures_the_budget_left_out_are_named(hung, tmp_path,
                                                     caplog):
    status = fenced_cluster("rn4", "rn5")
    environ = agent_environ(tmp_path, hung.url, request_timeout=30,
                            CRM_meta_timeout=2500)
    statefile.save(statefile.path(environ), statefile.empty())
    log = logging.getLogger("test.budget")
    records = FakeStore()

    def deps(config, log, budget):
        return monitor.Dependencies(config, log, budget=budget,
                                    read=lambda: status, store=records)

    assert ocf.monitor(environ, log, deps_factory=deps) == ocf.OCF_SUCCESS
    assert hung.requests == ["POST /v2/executions HTTP/1.1"]
    assert "rn1: could not start the evacuation workflow, will retry at " \
        "the next monitor: no answer within the timeout" in caplog.text
    assert "the monitor's budget of 2 s is spent; not handed over this " \
        "pass (the next one starts with them): rn2, rn4, rn5" in caplog.text
    assert records.records == {}


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Costly:
    """Executions whose get and create take ``cost`` seconds of the
    pass, cut to the time left as a bound request is (then it fails as a
    request that timed out does)."""

    def __init__(self, executions, time, cost):
        self.inner = executions
        self.time = time
        self.cost = cost
        self.budget = None
        self.asked = []

    def _spend(self):
        left = self.budget.left()
        self.time.now += min(self.cost, left)
        if self.cost > left:
            raise requests.Timeout("read timed out")

    def get(self, execution_id):
        self.asked.append(execution_id)
        self._spend()
        return self.inner.get(execution_id)

    def _create(self, url, body):
        self._spend()
        return self.inner._create(url, body)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def config_for(**params):
    environ = {"OCF_RESKEY_mistral_url": "http://127.0.0.1:9/v2",
               "OCF_RESKEY_threshold": "100"}
    environ.update({f"OCF_RESKEY_{k}": str(v) for k, v in params.items()})
    return config_module.from_environ(environ)


def costly_pass(state, client, time, seconds, status, store):
    pass_budget = budget.Budget(seconds, clock=time)
    client.executions.budget = pass_budget
    return monitor.run(state, monitor.Dependencies(
        config_for(), logging.getLogger("test.budget"),
        read=lambda: status, store=store, connect=lambda: client,
        origin="test", budget=pass_budget))


def test_the_failures_a_pass_left_out_come_first_in_the_next(caplog):
    """Each request takes 1 s, a pass has 2.5 s: the first pass asks
    about A and B and is cut in C; the next asks first about D."""
    status, store = fenced_cluster("rn4", "rn5"), FakeStore()
    state = watched(status, store)
    client, time = FakeClient(), FakeTime()
    for entry in state["watch"].values():
        client.executions.items[entry["execution_id"]] = Execution(
            {"id": entry["execution_id"]})
    client.executions = Costly(client.executions, time, cost=1.0)
    caplog.set_level(logging.INFO, logger="test.budget")
    ids = [e["execution_id"] for e in state["watch"].values()]
    assert costly_pass(state, client, time, 2.5, status, store) is not None
    assert client.executions.asked == ids[:3]
    assert f"rn5 (execution {ids[3]})" in caplog.text
    assert f"rn4: cannot follow execution {ids[2]}" in caplog.text
    costly_pass(state, client, time, 2.5, status, store)
    assert client.executions.asked == ids[:3] + [ids[3], ids[0], ids[1]]
    assert "1 watched failure(s) not checked this pass (the next one " \
        f"checks them first): rn4 (execution {ids[2]})" in caplog.text


def test_a_record_the_budget_left_out_is_written_by_the_next_pass(
        tmp_path, monkeypatch, caplog):
    """The start of the run takes the whole budget: its CIB record
    (crm_attribute on a CIB file) is not written in that pass, and is in
    the next one, without a second start."""
    cib = tmp_path / "cib.xml"
    shutil.copy(os.path.join(FIXTURES, "cib", "rn1-fenced.xml"), cib)
    monkeypatch.setenv("CIB_file", str(cib))
    status = crm_mon.read_file(os.path.join(
        LIVE, "crm_mon_fencing_succeeded.xml"))
    client, time, state = FakeClient(), FakeTime(), statefile.empty()
    client.executions = Costly(client.executions, time, cost=2.0)
    records = store_module.CibStore()
    costly_pass(state, client, time, 2.0, status, None)
    assert len(client.executions.posts) == 1
    assert records.all() == {}
    assert "not recorded in the CIB (a repeat lands on the same " \
        "execution; the next monitor writes it): the monitor's budget of " \
        "2 s is spent" in caplog.text
    client.executions.cost = 0
    costly_pass(state, client, time, 2.0, status, None)
    assert len(client.executions.posts) == 1
    assert records.all()["rn1"].execution_id == \
        client.executions.posts[0]["id"]


class Recorder:
    """A transport adapter that answers every request with one Mistral
    execution and keeps the timeout it was given."""

    def __init__(self):
        self.timeouts = []

    def send(self, request, stream=False, timeout=None, verify=True,
             cert=None, proxies=None):
        self.timeouts.append(timeout)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps({"id": "x", "state": "RUNNING"}
                                       ).encode()
        response.request, response.url = request, request.url
        return response

    def close(self):
        pass


@pytest.mark.parametrize("keystone", [False, True])
def test_every_request_is_cut_to_the_time_left(keystone):
    from keystoneauth1 import session as ks_session
    from mistralclient.api import client as mistral_api

    if keystone:
        client = mistral_api.client(
            mistral_url="http://127.0.0.1:9/v2",
            session=ks_session.Session(timeout=30))
        transport = client.executions.http_client.session.session
    else:
        client = mistral_client.connect(mistral_url="http://127.0.0.1:9/v2",
                                        timeout=30)
        transport = client.executions.http_client.session
    recorder = Recorder()
    transport.mount("http://", recorder)
    time = FakeTime()
    pass_budget = budget.Budget(5, clock=time)
    budget.bind(client, pass_budget)
    budget.bind(client, pass_budget)  # once is enough: no double wrap
    client.executions.get("x")
    time.now = 4.5
    client.executions.get("x")
    assert recorder.timeouts == [5, 0.5]
    time.now = 5
    with pytest.raises(budget.OutOfTime):
        client.executions.get("x")
    assert len(recorder.timeouts) == 2  # nothing sent


@pytest.mark.parametrize("value, expected", [
    ("20000", (20.0, None)),
    ("2500", (2.5, None)),
    (None, (60.0, None)),
    ("", (60.0, None)),
])
def test_the_monitor_timeout_comes_from_crm_meta_timeout(value, expected):
    environ = {} if value is None else {"OCF_RESKEY_CRM_meta_timeout": value}
    assert budget.monitor_timeout(environ) == expected
    assert budget.pass_seconds(expected[0]) == pytest.approx(
        0.8 * expected[0])


def test_an_unreadable_crm_meta_timeout_falls_back_and_says_so():
    seconds, why = budget.monitor_timeout(
        {"OCF_RESKEY_CRM_meta_timeout": "soon"})
    assert seconds == 60.0
    assert "OCF_RESKEY_CRM_meta_timeout='soon' is not a number of " \
        "milliseconds" in why
