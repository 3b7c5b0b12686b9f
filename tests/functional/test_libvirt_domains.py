"""computemonitor/domains.py on the session's real libvirtd: which domains
are Nova instances, and what a connection that dies under a call does.
A libvirt error other than "no such metadata" (or, for an event's domain,
"no such domain") is raised, so that the monitor reconnects and
reconciles; it is never remembered as "not a Nova instance", which would
make the monitor ignore that VM's crashes for good."""

import uuid

import pytest

from instance_ha.computemonitor import domains

libvirt = pytest.importorskip("libvirt")


class ListedBeforeTheRestart:
    """A connection whose listAllDomains answers with the domains listed
    before libvirtd restarted: the reads of a reconciliation that began
    just before the connection died."""

    def __init__(self, conn, listed):
        self._conn = conn
        self._listed = listed

    def listAllDomains(self, flags):  # noqa: N802 (libvirt's name)
        return self._listed

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest.fixture
def source(libvirtd):
    source = domains.LibvirtDomains(libvirtd.ro_uri)
    source.connect()
    yield source
    source.close()


def nova_domain(libvirtd):
    server_id = str(uuid.uuid4())
    name = libvirtd.define(server_id)
    libvirtd.start_domain(name)
    return server_id, name


def servers(source):
    return {d.name: d.server for d, _state, _reason in source.states()}


def test_a_domain_is_a_nova_instance_by_nova_s_metadata(libvirtd, source):
    server_id, name = nova_domain(libvirtd)
    other = libvirtd.define(nova=False)
    found = servers(source)
    assert found[name] == server_id
    assert found[other] is None
    assert source.domain(server_id, name).server == server_id


def test_a_reconciliation_under_a_dying_connection_remembers_nothing(
        libvirtd, source):
    server_id, name = nova_domain(libvirtd)
    listed = [d for d in source._conn.listAllDomains(0)
              if d.UUIDString() == server_id]
    libvirtd.restart()
    source._conn = ListedBeforeTheRestart(source._conn, listed)
    with pytest.raises(libvirt.libvirtError):
        source.states()
    source.close()
    source.connect()
    assert servers(source)[name] == server_id


def test_an_event_s_domain_looked_up_on_a_dead_connection_is_an_error(
        libvirtd, source):
    server_id, name = nova_domain(libvirtd)
    libvirtd.restart()
    with pytest.raises(libvirt.libvirtError):
        source.domain(server_id, name)
    source.close()
    source.connect()
    assert source.domain(server_id, name).server == server_id


def test_the_domain_of_an_event_that_is_gone_is_no_instance(libvirtd,
                                                             source):
    server_id = str(uuid.uuid4())
    gone = source.domain(server_id, "instance-ha-test-gone")
    assert gone.server is None
    # Not remembered: defined later, it is the instance.
    name = libvirtd.define(server_id)
    assert source.domain(server_id, name).server == server_id
