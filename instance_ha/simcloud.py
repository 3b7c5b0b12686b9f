"""``instance_ha.simcloud``: the simulated cloud of the demo, the tests and
the benchmarks, which is not part of this distribution.

It has fixed test passwords, so the production install (instance-ha)
does not carry it: the instance-ha-simcloud distribution (``simcloud/``
in the source tree; ``pip install ./simcloud``) installs it as the
top-level package ``instance_ha_simcloud``, and this module makes that
directory this package's path, so that everything imports it under one
name, ``instance_ha.simcloud`` (never ``instance_ha_simcloud.*``: that
would load its modules a second time).  A separate top-level package,
not files under ``instance_ha/``: another distribution's files there
would make ``instance_ha`` a namespace package hiding an editable
instance-ha.
"""

import importlib.util

_spec = importlib.util.find_spec("instance_ha_simcloud")
if _spec is None or not _spec.submodule_search_locations:
    raise ModuleNotFoundError(
        "No module named 'instance_ha_simcloud': the simulated cloud is "
        "the instance-ha-simcloud distribution (pip install ./simcloud "
        "from instance-ha's source tree)", name="instance_ha_simcloud")
__path__ = list(_spec.submodule_search_locations)
