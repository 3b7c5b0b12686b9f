"""Measure the simulated cloud at scale: ``python -m
instance_ha.simcloud.scale [HOSTS [VMS_PER_HOST [REPEATS]]]``
(default 100 x 100, 20 repeats).  Prints how long loading took and how
long a host-filtered, all-tenants server list takes through
python-novaclient over HTTP (the call Masakari and instance-ha make)."""

import statistics
import sys
import time

from instance_ha.simcloud import server
from instance_ha.simcloud import testing
from instance_ha.simcloud import topology


def measure(hosts=100, vms_per_host=100, repeats=20):
    started = time.perf_counter()
    cloud = topology.build(topology.generate(hosts, vms_per_host))
    loaded = time.perf_counter() - started
    with server.SimCloud(cloud) as sim:
        nova = testing.nova(sim, "2.53")
        nova.servers.list(search_opts={"all_tenants": True,
                                       "host": "compute1"})
        timings = []
        for index in range(repeats):
            host = f"compute{index % hosts + 1}"
            started = time.perf_counter()
            found = nova.servers.list(search_opts={"all_tenants": True,
                                                   "host": host})
            timings.append(time.perf_counter() - started)
            assert len(found) == vms_per_host, len(found)
        started = time.perf_counter()
        page = nova.servers.list(search_opts={"all_tenants": True})
        full_page = time.perf_counter() - started
    return {"servers": len(cloud.servers), "load_s": loaded,
            "host_list_median_s": statistics.median(timings),
            "host_list_max_s": max(timings),
            "first_page_s": full_page, "first_page_servers": len(page)}


def main(argv):
    numbers = [int(arg) for arg in argv]
    result = measure(*numbers)
    print(f"{result['servers']} servers loaded in {result['load_s']:.2f} s;"
          f" host-filtered detail list (all_tenants, novaclient over HTTP):"
          f" median {result['host_list_median_s'] * 1000:.1f} ms, max "
          f"{result['host_list_max_s'] * 1000:.1f} ms; first page of "
          f"{result['first_page_servers']} servers "
          f"{result['first_page_s'] * 1000:.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
