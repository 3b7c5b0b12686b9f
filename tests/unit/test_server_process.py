"""instance_ha.server_process.free_port: a port for a test's server that
no outgoing connection can take before the server binds it."""

import socket

from instance_ha import server_process


def test_free_port_is_below_the_ephemeral_range_and_free():
    low, _high = server_process.ephemeral_range()
    for _ in range(20):
        port = server_process.free_port()
        assert server_process.PORT_FLOOR <= port < low
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_free_port_skips_a_port_in_use(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        free = server_process.free_port()
        monkeypatch.setattr(server_process.random, "sample",
                            lambda population, k: [taken, free])
        assert server_process.free_port() == free
