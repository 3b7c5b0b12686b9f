"""Which failures the client retries, and how an action survives a remote
executor (rebuilt without __init__)."""

import pytest
from keystoneauth1 import exceptions as ks_exceptions
from novaclient import exceptions as nova_exceptions

from instance_ha import nova_client
from instance_ha import pack


def nova_error(code, message):
    return nova_exceptions.from_response(
        type("R", (), {"status_code": code, "headers": {}})(),
        {"error": {"message": message}}, "http://x", "GET")


@pytest.mark.parametrize("exc, transient", [
    (ks_exceptions.ConnectFailure("refused"), True),
    (ks_exceptions.ConnectTimeout("slow"), True),
    (ks_exceptions.SSLError("bad certificate"), False),
    (nova_error(503, "unavailable"), True),
    (nova_error(502, "bad gateway"), True),
    (nova_error(504, "gateway timeout"), True),
    (nova_error(500, "boom"), False),
    (nova_error(409, "Cannot 'stop' instance x while it is in task_state "
                     "powering-on"), True),
    (nova_error(409, "Cannot 'stop' instance x while it is in vm_state "
                     "paused"), False),
    (nova_error(404, "Instance x could not be found."), False),
    (ks_exceptions.http.ServiceUnavailable(), True),
])
def test_transient(exc, transient):
    assert nova_client.is_transient(exc) is transient


def test_describe_keeps_novas_message():
    exc = nova_error(400, "Compute service of compute1 is still in use.")
    assert nova_client.describe(exc, "evacuating s") == \
        "evacuating s: HTTP 400: Compute service of compute1 is still in " \
        "use."
    assert nova_client.status_of(exc) == 400


def test_retrying_stops_at_the_budget(monkeypatch):
    monkeypatch.setattr(nova_client, "RETRY_INITIAL_DELAY", 0.01)
    nova = nova_client.Nova(cloud=None, budget=0.1)
    attempts = []

    def attempt():
        attempts.append(1)
        raise nova_error(503, "unavailable")

    with pytest.raises(nova_client.NovaError) as error:
        nova.retrying("listing", attempt, server="s", host="h")
    assert error.value.as_dict() == {
        "server": "s", "host": "h", "code": 503,
        "reason": "listing: HTTP 503: unavailable"}
    assert 2 <= len(attempts) <= 5


def test_retrying_does_not_retry_a_refusal():
    attempts = []

    def attempt():
        attempts.append(1)
        raise nova_error(400, "no")

    with pytest.raises(nova_client.NovaError):
        nova_client.Nova(cloud=None).retrying("x", attempt)
    assert attempts == [1]


SAMPLE_INPUT = {
    "instance_ha.service_force_down": {"host": "h", "reason": "r"},
    "instance_ha.service_disable": {"host": "h", "reason": "r"},
    "instance_ha.service_enable": {"host": "h"},
    "instance_ha.host_servers": {"search_opts": {"host": "h"},
                                 "policy": {"evacuate": "tagged"}},
    "instance_ha.lock": {"server": "s"},
    "instance_ha.unlock": {"server": "s", "locked_by_us": True},
    "instance_ha.reset_state": {"server": "s", "state": "error"},
    "instance_ha.recover_servers": {
        "servers": [{"id": "s", "case": "active"}], "source_host": "h",
        "fencing": {"node": "rn1"}, "targets": ["t"]},
    "instance_ha.stop": {"server": "s"},
    "instance_ha.start": {"server": "s"},
}


def test_every_action_is_plain_data():
    """Mistral rebuilds an action on a remote executor with __new__ and
    its attributes; nothing may depend on __init__ having run there."""
    entry_points = {ep.name: ep for ep in pack.action_entry_points()}
    assert set(SAMPLE_INPUT) <= set(entry_points)
    for name, kwargs in SAMPLE_INPUT.items():
        cls = entry_points[name].load()
        action = cls(**kwargs)
        assert vars(action) == {**_defaults(cls), **kwargs}
        rebuilt = cls.__new__(cls)
        for key, value in vars(action).items():
            setattr(rebuilt, key, value)
        rebuilt.check()


def _defaults(cls):
    import inspect

    return {name: p.default for name, p in
            inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_a_cloud_without_microversions_is_one_clear_error():
    from novaclient import exceptions

    def attempt():
        raise exceptions.UnsupportedVersion("Server doesn't support "
                                            "microversions")

    with pytest.raises(nova_client.NovaError) as error:
        nova_client.Nova(cloud=None).retrying("negotiating", attempt)
    assert error.value.reason == \
        "negotiating: Server doesn't support microversions"
