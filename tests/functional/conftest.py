import fake_pacemaker
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


FLAVORS = [{"name": "m1.small", "id": "1", "vcpus": 1, "ram": 2048,
            "disk": 20},
           {"name": "m1.xlarge", "id": "5", "vcpus": 8, "ram": 16384,
            "disk": 160}]


@pytest.fixture(scope="module")
def mistral_env(tmp_path_factory):
    """One embedded Mistral for the module; its actions read the current
    test's simulated cloud from clouds.yaml, and the cluster from a fake
    Pacemaker (tests/fake_pacemaker.py)."""
    workdir = tmp_path_factory.mktemp("workflows")
    clouds = workdir / "clouds.yaml"
    server_process.write_clouds_yaml(clouds, {"clouds": {}})
    pacemaker = fake_pacemaker.FakePacemaker(str(workdir / "pacemaker"))
    server = server_process.ServerProcess(
        str(workdir), env=dict(server_process.cloud_env(str(clouds)),
                               **pacemaker.env))
    server.start()
    yield mistral_client.connect(mistral_url=server.url), clouds, pacemaker
    server.stop(timeout=20)
    server.kill()


@pytest.fixture
def mistral_cloud(mistral_env, simcloud_factory):
    """make(servers, ...) -> a simulated cloud whose compute1 holds
    ``servers``; Pacemaker shows compute1 fenced (make.pacemaker.show()
    for another host or state)."""
    client, clouds, pacemaker = mistral_env

    def make(servers, hosts=3, other_hosts=None, **settings):
        config = {"settings": {"evacuation_time": 0.3, "power_time": 0.05,
                               **settings},
                  "flavors": FLAVORS,
                  "hosts": [{"name": "compute1", "servers": servers}] + [
                      {"name": f"compute{i}", "servers": [],
                       **(other_hosts or {})}
                      for i in range(2, hosts + 1)]}
        sim = simcloud_factory(config)
        server_process.write_clouds_yaml(clouds, sim.clouds())
        pacemaker.show(fake_pacemaker.FENCED, node="compute1")
        return sim
    make.client = client
    make.pacemaker = pacemaker
    make.factory = simcloud_factory
    make.clouds = clouds
    make.flavors = FLAVORS
    return make
