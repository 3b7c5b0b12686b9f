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


def test_only_the_childs_own_log_lines_count(tmp_path):
    """The log file is shared with earlier servers of the work directory:
    ready and errors are this child's (by PID), for its URL."""
    import types

    from instance_ha import embedded

    server = server_process.ServerProcess(str(tmp_path), port=12345)
    server.process = types.SimpleNamespace(pid=4242)
    ready = f"{embedded.READY_MESSAGE} {server.url} (database x, log y)"
    with open(server.log_file, "w", encoding="utf-8") as log:
        log.write(f"2026-11-21 14:43:25.497 4141 INFO x [-] {ready}\n"
                  "2026-11-21 14:43:25.497 4141 ERROR x [-] not ours\n"
                  "2026-11-21 14:43:26.101 4242 ERROR x [-] ours\n")
    assert not server.logged_ready()
    assert server.logged_errors() == [
        "2026-11-21 14:43:26.101 4242 ERROR x [-] ours"]
    with open(server.log_file, "a", encoding="utf-8") as log:
        log.write(f"2026-11-21 14:43:27.000 4242 INFO x [-] {ready}\n")
    assert server.logged_ready()
