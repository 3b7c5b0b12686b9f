import pytest

from instance_ha import mistral_client
from instance_ha import server_process


@pytest.fixture
def start_server(tmp_path):
    """Start embedded Mistral servers in tmp_path; each is stopped (then
    killed) by its PID at teardown, whatever the test did."""
    started = []

    def start(*extra_args, workdir=None, port=None):
        server = server_process.ServerProcess(
            str(workdir or tmp_path), port=port, extra_args=extra_args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop(timeout=20)
        server.kill()


@pytest.fixture
def embedded_server(start_server):
    return start_server()


@pytest.fixture
def mistral(embedded_server):
    return mistral_client.connect(mistral_url=embedded_server.url)
