import http.server
import json
import os
import pathlib
import shutil
import threading
import time
import urllib.parse

import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def fixture(*parts):
    return str(FIXTURES.joinpath(*parts))


def _mon(name):
    from instance_ha.hostmonitor import crm_mon

    return crm_mon.read_file(fixture("crm_mon", f"{name}.xml"))


def _history(name):
    from instance_ha.hostmonitor import fencing

    with open(fixture("fence", f"{name}.xml"), "rb") as f:
        return fencing.parse_history(f.read())


@pytest.fixture
def path():
    """path("crm_mon", "rn1-fenced.xml"): a fixture file's path."""
    return fixture


@pytest.fixture
def mon():
    """mon(NAME): fixtures/crm_mon/NAME.xml as a ClusterStatus."""
    return _mon


@pytest.fixture
def history():
    """history(NAME): the fence events of fixtures/fence/NAME.xml."""
    return _history


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """The fixtures were made in UTC; crm_mon prints some times in local
    time without a zone (ctime)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def cib_copy(tmp_path):
    """A writable copy of a generated CIB, for CIB_file=..."""
    def copy(name):
        target = tmp_path / f"{name}.xml"
        shutil.copy(fixture("cib", f"{name}.xml"), target)
        return str(target)
    return copy


@pytest.fixture
def cib_env():
    """Environment for running Pacemaker tools on a CIB file."""
    def env(cib_file):
        return dict(os.environ, CIB_file=cib_file, TZ="UTC")
    return env


class _MistralHandler(http.server.BaseHTTPRequestHandler):
    """Just enough of Mistral's /v2/executions for the trigger."""

    def log_message(self, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        server = self.server
        server.posts.append(body)
        if self.path != "/v2/executions":
            return self._send(404, {"faultstring": "not found"})
        if server.fail_next:
            server.fail_next -= 1
            return self._send(500, {"faultstring": "engine unavailable"})
        execution_id = body.get("id") or f"generated-{len(server.posts)}"
        existing = server.executions.get(execution_id)
        if existing is None:
            created = f"2026-11-21 06:00:{len(server.posts):02d}"
            existing = dict(body, id=execution_id, state="RUNNING",
                            created_at=created)
            server.executions[execution_id] = existing
        return self._send(201, existing)

    def do_GET(self):
        parsed = urllib.parse.urlparse(self.path)
        server = self.server
        if parsed.path == "/v2/executions":
            query = urllib.parse.parse_qs(parsed.query)
            wanted = query.get("workflow_name", [None])[0]
            found = [e for e in server.executions.values()
                     if wanted is None or e["workflow_name"] == wanted]
            found.sort(key=lambda e: e["created_at"], reverse=True)
            return self._send(200, {"executions": found})
        if parsed.path.startswith("/v2/executions/"):
            execution = server.executions.get(parsed.path.rsplit("/", 1)[1])
            if execution is None:
                return self._send(404, {"faultstring": "Execution not found"})
            return self._send(200, execution)
        return self._send(404, {"faultstring": "not found"})


@pytest.fixture
def fake_mistral():
    """An HTTP server on 127.0.0.1 that answers like Mistral's executions
    API (a repeated id returns the existing execution)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             _MistralHandler)
    server.posts = []
    server.executions = {}
    server.fail_next = 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v2"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
