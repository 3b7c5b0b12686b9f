"""The handoff record in the CIB, through the real crm_attribute and
cibadmin on a CIB file."""

import json
import subprocess
import sys

import pytest

from instance_ha.hostmonitor import crm_mon
from instance_ha.hostmonitor import store

HANDOFF = store.Handoff(host="rn1", execution_id="0d4f-exec",
                        failure="rn1@2026-11-21T06:22:27+00:00")


@pytest.fixture
def cib(cib_copy, cib_env):
    path = cib_copy("rn1-fenced")
    return path, store.CibStore(env=cib_env(path))


def _get_in_new_process(cib_path, host):
    code = ("import json, os, sys\n"
            "from instance_ha.hostmonitor import store\n"
            "s = store.CibStore(env=dict(os.environ, CIB_file=sys.argv[1]))\n"
            "h = s.get(sys.argv[2])\n"
            "print(json.dumps(h and [h.host, h.execution_id, h.failure]))\n")
    result = subprocess.run([sys.executable, "-c", code, cib_path, host],
                            capture_output=True, text=True, timeout=60,
                            check=True)
    return json.loads(result.stdout)


def test_round_trip_survives_a_new_process(cib):
    path, records = cib
    assert records.get("rn1") is None
    records.record(HANDOFF)
    assert records.get("rn1") == HANDOFF
    assert _get_in_new_process(path, "rn1") == [
        "rn1", "0d4f-exec", "rn1@2026-11-21T06:22:27+00:00"]
    assert records.all() == {"rn1": HANDOFF}
    records.clear("rn1")
    assert records.get("rn1") is None
    assert _get_in_new_process(path, "rn1") is None
    assert records.all() == {}


def test_written_with_lifetime_forever_on_the_node(cib):
    path, records = cib
    records.record(HANDOFF)
    with open(path) as f:
        text = f.read()
    configuration = text[text.index("<configuration>"):
                         text.index("</configuration>")]
    assert 'name="instance-ha-evacuation"' in configuration
    assert "<status>" not in configuration


def test_remote_node_stays_a_remote_node(cib, cib_env):
    path, records = cib
    records.record(HANDOFF)
    status = crm_mon.read(env=cib_env(path))
    assert status.node("rn1").type == "remote"
    assert status.node("rn1").unclean is False


def test_several_hosts_and_replacing_a_record(cib):
    _, records = cib
    records.record(HANDOFF)
    second = store.Handoff(host="rn2", execution_id="e2",
                           failure="rn2@2026-11-21T06:30:00+00:00")
    records.record(second)
    newer = store.Handoff(host="rn1", execution_id="e3",
                          failure="rn1@2026-11-22T00:00:00+00:00")
    records.record(newer)
    assert records.all() == {"rn1": newer, "rn2": second}


def test_clearing_nothing_is_fine(cib):
    _, records = cib
    records.clear("rn3")
    assert records.get("rn3") is None


def test_unreachable_cib_is_an_error(cib_env, tmp_path):
    records = store.CibStore(env=cib_env(str(tmp_path / "missing.xml")))
    with pytest.raises(store.StoreError):
        records.get("rn1")
    with pytest.raises(store.StoreError):
        records.record(HANDOFF)


def test_missing_tool_is_an_error():
    records = store.CibStore(crm_attribute="/nonexistent/crm_attribute",
                             cibadmin="/nonexistent/cibadmin")
    with pytest.raises(store.StoreError, match="not found"):
        records.get("rn1")
    with pytest.raises(store.StoreError, match="not found"):
        records.all()


def test_unreadable_value():
    with pytest.raises(store.StoreError, match="unreadable"):
        store.Handoff.from_value("rn1", "just-one-word")
