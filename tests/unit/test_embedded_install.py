"""The embedded server's pack registration at start-up: a transient
refusal is tried again, a real one is not."""

import logging
import threading

import pytest
from mistralclient.api import base as mistral_base

from instance_ha import embedded
from instance_ha import installer


@pytest.fixture
def options(tmp_path):
    return embedded.ServerOptions(db=str(tmp_path / "m.sqlite"), port=9)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(embedded, "INSTALL_RETRY_INTERVAL", 0.01)


def scripted(monkeypatch, answers):
    calls = []

    def install(client):
        calls.append(client)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    monkeypatch.setattr(embedded.installer, "install", install)
    return calls


def test_a_transient_refusal_is_tried_again(monkeypatch, options, caplog):
    caplog.set_level(logging.INFO, logger="instance_ha.embedded")
    locked = installer._unreachable(mistral_base.APIException(
        500, "(sqlite3.OperationalError) database is locked"))
    assert locked.transient
    calls = scripted(monkeypatch, [locked, locked, [
        installer.Outcome("instance_ha.host_evacuate", "unchanged")]])
    embedded._install_pack(options, threading.Event())
    assert len(calls) == 3
    assert "registering the pack failed" in caplog.text
    assert "workflow instance_ha.host_evacuate: unchanged" in caplog.text


def test_a_real_refusal_is_not(monkeypatch, options):
    missing = installer.InstallError("Mistral does not know the action(s) "
                                     "instance_ha.recover_servers")
    forbidden = installer._unreachable(mistral_base.APIException(
        403, "forbidden"))
    for error in (missing, forbidden):
        assert not error.transient
        calls = scripted(monkeypatch, [error])
        with pytest.raises(installer.InstallError):
            embedded._install_pack(options, threading.Event())
        assert len(calls) == 1


def test_it_gives_up_after_its_budget(monkeypatch, options):
    monkeypatch.setattr(embedded, "INSTALL_RETRY_SECONDS", 0)
    down = installer._unreachable(ConnectionRefusedError())
    assert down.transient
    calls = scripted(monkeypatch, [down, down])
    with pytest.raises(installer.InstallError):
        embedded._install_pack(options, threading.Event())
    assert len(calls) in (1, 2)


def test_a_stop_ends_the_retries(monkeypatch, options):
    stop = threading.Event()
    stop.set()
    down = installer._unreachable(ConnectionRefusedError())
    calls = scripted(monkeypatch, [down])
    embedded._install_pack(options, stop)
    assert len(calls) == 1
