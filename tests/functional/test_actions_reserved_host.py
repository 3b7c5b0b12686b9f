"""claim_reserved_host and release_reserved_host against the simulated
cloud over HTTP: a claim is recorded in Nova (a mark on the reserved
host, its name in the failed host's disabled reason) before the host is
used, so a claim whose answer was lost, or a later run, finds its host
again; and two claims for two failed hosts racing on one spare (forced
interleavings) never both get it."""

import json
import threading

import pytest
from actions_support import run
from actions_support import topology

from instance_ha.actions import reserved_host
from instance_ha.actions.reserved_host import ClaimReservedHost
from instance_ha.actions.reserved_host import ReleaseReservedHost
from instance_ha.actions.service_enable import ServiceEnable
from instance_ha.simcloud import microversion

pytest_plugins = ("actions_support",)

RESERVED = "instance-ha: reserved"
FENCED = "instance-ha: host recovery 1234 started 2026-11-21"


@pytest.fixture
def spares(make_cloud):
    """compute1 (failed, one VM), compute2 ordinary, spare1 and spare2
    reserved."""
    cloud = make_cloud(topology({"compute1": [{"name": "vm1"}],
                                 "compute2": [], "spare1": [],
                                 "spare2": []}))
    for name in ("spare1", "spare2"):
        service = cloud.model.hosts[name].service
        service.disabled, service.disabled_reason = True, RESERVED
    failed = cloud.model.hosts["compute1"].service
    failed.forced_down, failed.disabled = True, True
    failed.disabled_reason = FENCED
    return cloud


def state(cloud, host):
    service = cloud.model.hosts[host].service
    return service.disabled, service.disabled_reason


def test_claim_marks_the_first_reserved_candidate(spares):
    mark = spares.mark()
    result = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert result["host"] == "spare1" and result["claimed"] is True
    assert state(spares, "spare1") == (
        True, "instance-ha: claimed for compute1")
    assert state(spares, "spare2") == (True, RESERVED)
    assert state(spares, "compute1") == (
        True, FENCED + "; reserved host spare1")
    assert spares.model.hosts["compute1"].service.forced_down is True
    assert spares.operations(mark).count("services.update") == 2


def test_a_claim_whose_answer_was_lost_finds_its_host_again(spares):
    run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    mark = spares.mark()
    again = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert again["host"] == "spare1" and again["claimed"] is True
    assert "earlier attempt" in again["reason"]
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "spare2") == (True, RESERVED)


def test_a_claim_found_again_after_the_enable(spares):
    """Nova clears the reason of a service it enables: the failed host's
    record still names the claimed host, for any later run."""
    run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    run(ServiceEnable("spare1"))
    mark = spares.mark()
    again = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert again["host"] == "spare1"
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "spare2") == (True, RESERVED)


def test_a_recorded_host_taken_since_by_another_failure_is_not_used(
        spares):
    run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    run(ReleaseReservedHost("spare1", "compute1"))
    spares.model.hosts["spare1"].service.disabled_reason = \
        "instance-ha: claimed for compute7"
    again = run(ClaimReservedHost("compute1", ["spare1", "spare2"]))
    assert again["host"] == "spare2"
    assert state(spares, "compute1") == (
        True, FENCED + "; reserved host spare2")


def test_a_long_reason_is_cut_to_nova_255_characters(spares):
    spares.model.hosts["compute1"].service.disabled_reason = "x" * 250
    run(ClaimReservedHost("compute1", ["spare1"]))
    reason = state(spares, "compute1")[1]
    assert len(reason) == 255
    assert reason.endswith("; reserved host spare1")


def test_a_host_claimed_for_another_failure_is_not_taken(spares):
    run(ClaimReservedHost("compute2", ["spare1"]))
    result = run(ClaimReservedHost("compute1", ["spare1"]))
    assert result["host"] is None
    assert "no reserved host is available" in result["reason"]
    assert state(spares, "spare1") == (
        True, "instance-ha: claimed for compute2")


def test_enable_after_the_claim_then_release_makes_it_reserved_again(
        spares):
    run(ClaimReservedHost("compute1", ["spare1"]))
    run(ServiceEnable("spare1"))
    assert state(spares, "spare1") == (False, None)
    result = run(ReleaseReservedHost("spare1", "compute1"))
    assert result["released"] is True
    assert state(spares, "spare1") == (
        True, f"{RESERVED} (unused by the recovery of compute1)")


def test_release_of_a_host_still_marked_by_the_claim(spares):
    """The run died between the claim and the enable, or could not
    enable: the claim mark goes, the host is reserved again."""
    run(ClaimReservedHost("compute1", ["spare1"]))
    result = run(ReleaseReservedHost("spare1", "compute1"))
    assert result["released"] is True
    assert state(spares, "spare1")[1].startswith(RESERVED)


def test_release_leaves_a_host_disabled_for_another_reason(spares):
    service = spares.model.hosts["spare1"].service
    service.disabled_reason = "operator: bad disk"
    mark = spares.mark()
    result = run(ReleaseReservedHost("spare1", "compute1"))
    assert result["released"] is False
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "spare1") == (True, "operator: bad disk")


def test_release_leaves_a_host_that_runs_servers(spares):
    mark = spares.mark()
    result = run(ReleaseReservedHost("compute1", "compute9"))  # runs vm1
    assert result["released"] is False
    assert "runs servers" in result["reason"]
    assert "services.update" not in spares.operations(mark)
    assert state(spares, "compute1") == (True, FENCED)


def test_claim_before_microversion_2_53_uses_disable_log_reason(
        spares, monkeypatch):
    monkeypatch.setattr(microversion, "MAX_VERSION", (2, 40))
    mark = spares.mark()
    result = run(ClaimReservedHost("compute1", ["spare1"]))
    assert result["host"] == "spare1"
    updates = spares.nova_calls(mark, operation="services.update")
    assert [c.path for c in updates] == [
        "/v2.1/os-services/disable-log-reason"] * 2
    assert state(spares, "spare1") == (
        True, "instance-ha: claimed for compute1")


# -- two recoveries claiming at once ---------------------------------------
#
# Each race below is forced, not hoped for: the simulated cloud holds
# chosen requests (a claim's mark on the spare, a record on a failed host,
# the next read of the services) until the other claim has reached a
# given point, so both claims read the spare as reserved before either
# mark lands, and the marks land in the order each case names.

HOLD = 30      # seconds a held request waits at most (a hang fails)


class Hold:
    """One request to hold: the first that ``match`` accepts once
    ``after`` is set (if given).  Nova carries it out once ``until`` is
    set, and its answer goes out once ``answer_after`` is set."""

    def __init__(self, match, until=None, after=None, answer_after=None):
        self.match = match
        self.until = until
        self.after = after
        self.answer_after = answer_after
        self.arrived = threading.Event()
        self.applied = threading.Event()
        self.timed_out = []


class Requests:
    """Holds requests of a simulated cloud (see Hold)."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.holds = []
        self._lock = threading.Lock()
        serve = cloud.sim.serve

        def held_serve(handler, request):
            hold = self._take(request)
            if hold is None:
                return serve(handler, request)
            hold.arrived.set()
            self._wait(hold, hold.until, "until")
            send = handler.send

            def held_send(response):
                hold.applied.set()
                self._wait(hold, hold.answer_after, "answer_after")
                send(response)

            handler.send = held_send
            try:
                serve(handler, request)
            finally:
                handler.send = send
                hold.applied.set()

        cloud.sim.serve = held_serve

    @staticmethod
    def _wait(hold, event, name):
        if event is not None and not event.wait(HOLD):
            hold.timed_out.append(name)

    def _take(self, request):
        with self._lock:
            for hold in self.holds:
                if hold.arrived.is_set() or (
                        hold.after is not None and not hold.after.is_set()):
                    continue
                if hold.match(request):
                    hold.arrived.set()
                    return hold
        return None

    def hold(self, match, **events):
        hold = Hold(match, **events)
        with self._lock:
            self.holds.append(hold)
        return hold

    def check(self):
        """Every hold was reached, and none waited in vain."""
        for hold in self.holds:
            assert hold.arrived.is_set() and hold.applied.is_set(), \
                "a held request never came"
            assert hold.timed_out == [], hold.timed_out

    # what to hold

    def _service_write(self, host, request):
        if request.method != "PUT" or \
                not request.path.startswith("/v2.1/os-services/"):
            return None
        uuid = self.cloud.model.hosts[host].service.uuid
        if request.path != f"/v2.1/os-services/{uuid}":
            return None
        return json.loads(request.body).get("disabled_reason")

    def mark(self, claimer, spare="spare1"):
        """The claim for ``claimer`` marking ``spare``."""
        return lambda r: self._service_write(spare, r) == CLAIMED + claimer

    def record(self, claimer, spare="spare1"):
        """``claimer``'s record of ``spare`` on its own service."""
        return lambda r: (self._service_write(claimer, r) or "").endswith(
            "; reserved host " + spare)

    def withdrawal(self, claimer):
        """``claimer``'s disabled reason rewritten without a record."""
        def match(request):
            reason = self._service_write(claimer, request)
            return reason is not None and "; reserved host " not in reason
        return match

    @staticmethod
    def services_read(request):
        return request.method == "GET" and \
            request.path == "/v2.1/os-services"


CLAIMED = "instance-ha: claimed for "


@pytest.fixture
def quick_settle(monkeypatch):
    monkeypatch.setattr(reserved_host, "SETTLE", 0.3)


@pytest.fixture(params=[1, 2], ids=["one-spare", "two-spares"])
def race(request, make_cloud, quick_settle):
    """compute1 and compute2 failed (forced down, one VM each), compute3
    ordinary, spare1 (and spare2) reserved."""
    hosts = {"compute1": [{"name": "vm1"}], "compute2": [{"name": "vm2"}],
             "compute3": []}
    spares = [f"spare{i}" for i in range(1, request.param + 1)]
    hosts.update({name: [] for name in spares})
    cloud = make_cloud(topology(hosts))
    for name in spares:
        service = cloud.model.hosts[name].service
        service.disabled, service.disabled_reason = True, RESERVED
    for name in ("compute1", "compute2"):
        service = cloud.model.hosts[name].service
        service.forced_down = service.disabled = True
        service.disabled_reason = f"instance-ha: host recovery of {name}"
    cloud.spares = spares
    cloud.requests = Requests(cloud)
    return cloud


def claim_in_thread(failed, spares, done=None, then=None):
    """Start ClaimReservedHost(failed, spares) in a thread; ``then``
    (a function of the result) runs after it in the same thread, and
    ``done`` is set at the end."""
    box = {}

    def target():
        try:
            box["result"] = run(ClaimReservedHost(failed, list(spares)))
            if then is not None:
                then(box["result"])
        finally:
            if done is not None:
                done.set()

    thread = threading.Thread(target=target, name=f"claim-{failed}")
    thread.start()
    box["thread"] = thread
    return box


def results_of(*boxes):
    for box in boxes:
        box["thread"].join(HOLD * 3)
        assert not box["thread"].is_alive(), "a claim never ended"
    return [box["result"] for box in boxes]


def assert_one_owner(cloud, winner, loser, results):
    """spare1 is the winner's only: its result and its record name it;
    the loser got spare2 (claimed in the same way) or nothing, and its
    record names no spare it does not hold."""
    by_host = dict(zip((winner, loser), results, strict=True))
    assert by_host[winner]["host"] == "spare1", by_host
    assert by_host[winner]["claimed"] is True
    assert state(cloud, winner)[1].endswith("; reserved host spare1")
    if len(cloud.spares) == 2:
        assert by_host[loser]["host"] == "spare2", by_host
        assert state(cloud, "spare2") == (True, CLAIMED + loser)
        assert state(cloud, loser)[1] == (
            f"instance-ha: host recovery of {loser}; reserved host spare2")
    else:
        assert by_host[loser]["host"] is None, by_host
        assert by_host[loser]["claimed"] is False
        assert "no reserved host is available" in \
            by_host[loser]["reason"]
        assert state(cloud, loser)[1] == \
            f"instance-ha: host recovery of {loser}"


@pytest.mark.parametrize("last", ["compute1", "compute2"])
def test_two_claims_both_read_the_spare_reserved_the_last_mark_wins(
        race, last):
    """Both claims read spare1 as reserved, then both marks land, in
    either order, before either claim reads its mark back: the claim
    whose mark landed last keeps spare1; the other reads the other mark
    back, writes no record, and goes on to the next candidate."""
    first = "compute2" if last == "compute1" else "compute1"
    held = race.requests
    last_mark = held.hold(held.mark(last))
    first_mark = held.hold(held.mark(first), until=last_mark.arrived)
    last_mark.until = first_mark.applied
    boxes = {host: claim_in_thread(host, race.spares)
             for host in ("compute1", "compute2")}
    results = results_of(boxes[last], boxes[first])
    held.check()
    assert_one_owner(race, last, first, results)
    assert state(race, "spare1") == (True, CLAIMED + last)
    # The loser wrote no record of spare1 (only of spare2, if any).
    uuid = race.model.hosts[first].service.uuid
    own = [c for c in race.nova_calls(operation="services.update")
           if c.path.endswith(uuid)]
    assert len(own) == len(race.spares) - 1


@pytest.mark.parametrize("enabled_first", [False, True],
                         ids=["before-the-enable", "after-the-enable"])
def test_a_late_mark_after_the_winner_owns_the_spare_is_handed_back(
        race, enabled_first):
    """compute2 read spare1 as reserved before compute1's mark, but its
    own mark lands only after compute1 owns spare1 (and, in one case,
    after compute1's recovery enabled it): compute2 finds compute1's
    record, puts compute1's mark back and then enables spare1 for it;
    spare1 stays compute1's, compute2 takes no record of it."""
    held = race.requests
    winner_done = threading.Event()
    late = held.hold(held.mark("compute2"), until=winner_done)
    held.hold(held.mark("compute1"), until=late.arrived)
    enable = (lambda result: run(ServiceEnable(result["host"]))) \
        if enabled_first else None
    winner = claim_in_thread("compute1", race.spares, done=winner_done,
                             then=enable)
    loser = claim_in_thread("compute2", race.spares)
    results = results_of(winner, loser)
    held.check()
    assert_one_owner(race, "compute1", "compute2", results)
    assert "claimed for compute1 first" in results[1]["reason"] or \
        len(race.spares) == 2
    # Handed back: enabled for compute1 (what its recovery does next).
    assert state(race, "spare1") == (False, None)
    again = run(ClaimReservedHost("compute1", race.spares))
    assert again["host"] == "spare1"


def test_a_mark_landing_between_the_winner_s_checks_makes_it_give_way(
        race):
    """compute1 read its mark back and wrote its record; compute2's mark
    (from a read before compute1's mark) lands before compute1's last
    read: compute1 sees it, takes its record back and gives way;
    compute2 keeps spare1.  Never both."""
    held = race.requests
    record = held.hold(held.record("compute1"))
    withdrawal = held.hold(held.withdrawal("compute1"), after=record.arrived)
    late = held.hold(held.mark("compute2"), until=record.arrived,
                     answer_after=withdrawal.applied)
    held.hold(held.mark("compute1"), until=late.arrived)
    held.hold(held.services_read, after=record.arrived, until=late.applied)
    boxes = [claim_in_thread(host, race.spares)
             for host in ("compute2", "compute1")]
    results = results_of(*boxes)
    held.check()
    assert_one_owner(race, "compute2", "compute1", results)
    assert state(race, "spare1") == (True, CLAIMED + "compute2")


def test_release_takes_the_record_back_so_another_recovery_may_claim(
        spares, quick_settle):
    run(ClaimReservedHost("compute1", ["spare1"]))
    run(ReleaseReservedHost("spare1", "compute1"))
    assert state(spares, "compute1") == (True, FENCED)
    spares.force_down("compute2")
    result = run(ClaimReservedHost("compute2", ["spare1"]))
    assert result["host"] == "spare1"
    assert state(spares, "spare1") == (True, CLAIMED + "compute2")


def test_a_spare_named_by_another_failed_host_is_not_claimed(
        spares, quick_settle):
    """An operator reserved spare1 again while compute2, whose recovery
    had used it, is still down with its record: no other recovery takes
    spare1 (compute2's next run would count it as its own); once compute2
    is up again, its record no longer counts."""
    other = spares.model.hosts["compute2"].service
    other.forced_down = other.disabled = True
    other.disabled_reason = "instance-ha: host recovery; reserved host spare1"
    mark = spares.mark()
    result = run(ClaimReservedHost("compute1", ["spare1"]))
    assert result["host"] is None
    assert "spare1 is named in the disabled reason of compute2" in \
        result["reason"]
    assert "services.update" not in spares.operations(mark)
    other.forced_down = False
    result = run(ClaimReservedHost("compute1", ["spare1"]))
    assert result["host"] == "spare1"
    assert state(spares, "spare1") == (True, CLAIMED + "compute1")
