"""instance-ha: instance high availability for OpenStack, driven by Pacemaker
and run by Mistral workflows."""

from setuptools import find_packages
from setuptools import setup

# One importable namespace, instance_ha.  The design card keeps each concern
# in its own top-level directory; package_dir maps them under the namespace so
# nothing generic such as "actions" lands in site-packages.
PACKAGE_DIRS = {
    "instance_ha": "instance_ha",
    "instance_ha.actions": "actions",
    "instance_ha.hostmonitor": "hostmonitor",
    "instance_ha.workflows": "workflows",
    "instance_ha.resource_agents": "resource_agents",
}



def packages():
    """Each mapped package and every sub-package below its directory."""
    found = []
    for name, directory in PACKAGE_DIRS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(directory)]
    return found


# Every Python action, as stock Mistral's legacy action provider loads them
# (entry point group "mistral.actions"; the entry point name is the action
# name used in the workflows).
MISTRAL_ACTIONS = [
    "instance_ha.pack_info = instance_ha.actions.pack_info:PackInfo",
    "instance_ha.check_input = instance_ha.actions.check_input:CheckInput",
    ("instance_ha.check_fencing = "
     "instance_ha.actions.check_fencing:CheckFencing"),
    ("instance_ha.service_force_down = "
     "instance_ha.actions.service_force_down:ServiceForceDown"),
    ("instance_ha.service_disable = "
     "instance_ha.actions.service_disable:ServiceDisable"),
    ("instance_ha.service_enable = "
     "instance_ha.actions.service_enable:ServiceEnable"),
    "instance_ha.host_servers = instance_ha.actions.host_servers:HostServers",
    "instance_ha.lock = instance_ha.actions.lock:Lock",
    "instance_ha.unlock = instance_ha.actions.unlock:Unlock",
    "instance_ha.reset_state = instance_ha.actions.reset_state:ResetState",
    "instance_ha.evacuate = instance_ha.actions.evacuate:Evacuate",
    ("instance_ha.wait_for_server = "
     "instance_ha.actions.wait_for_server:WaitForServer"),
    "instance_ha.stop = instance_ha.actions.stop:Stop",
    ("instance_ha.instance_restart_plan = "
     "instance_ha.actions.instance_restart_plan:InstanceRestartPlan"),
    ("instance_ha.claim_reserved_host = "
     "instance_ha.actions.reserved_host:ClaimReservedHost"),
    ("instance_ha.release_reserved_host = "
     "instance_ha.actions.reserved_host:ReleaseReservedHost"),
    ("instance_ha.unlock_evacuated = "
     "instance_ha.actions.unlock_evacuated:UnlockEvacuated"),
    "instance_ha.start = instance_ha.actions.start:Start",
]

setup(
    name="instance-ha",
    version="0.1.0",
    description=__doc__.replace("\n", " ").strip(),
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=packages(),
    package_dir=PACKAGE_DIRS,
    package_data={
        "instance_ha.workflows": ["*.yaml"],
        "instance_ha.resource_agents": ["*"],
    },
    include_package_data=False,
    install_requires=[
        "python-mistralclient>=5.0",
        "mistral-lib>=3.0",
        "python-novaclient>=18.0",
        "keystoneauth1>=5.0",
        # openstack.config: the standard clouds.yaml / OS_* loader.
        "openstacksdk>=1.0",
        "lxml>=4.9",
        "click>=8.1",
        "PyYAML>=6.0",
    ],
    extras_require={
        # The embedded Mistral server (instance-ha server, demo, tests).  A
        # stock Mistral executor needs only the core pack above.
        "server": ["mistral>=23.0.0,<24"],
        "test": [
            "mistral>=23.0.0,<24",
            "pytest>=8",
            "pytest-timeout>=2.3",
        ],
    },
    entry_points={
        "console_scripts": ["instance-ha = instance_ha.cli:main"],
        "mistral.actions": MISTRAL_ACTIONS,
    },
    classifiers=[
        "Environment :: OpenStack",
        "Programming Language :: Python :: 3",
    ],
)
