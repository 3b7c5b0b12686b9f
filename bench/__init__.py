"""instance-ha benchmarks: recovery time against the ideal and against
Masakari's engine, on the simulated cloud.  ``python -m bench --help``;
never part of the test suite (see bench/README.md)."""
