"""The simulated cloud: Keystone v3, the Nova compute API and slivers of
Glance and placement, over real HTTP on 127.0.0.1, behaving as real Nova
34 was measured to behave (doc/simulated-cloud.rst).  python-novaclient
and keystoneauth1 talk to it unchanged.

Modules: model (state and compute-side semantics), states (state tables),
nova / keystone / glance (the APIs), views (response bodies), validation,
microversion, policy, faults, calllog, timeline, placement, server
(HTTP), topology
(config), command (``instance-ha simcloud``), testing (test helpers).

Deliberate differences from real Nova:

* Service liveness: a "killed" host's nova-compute is down after
  ``service_down_time`` seconds, 0 by default (Nova: 60 s, measured 6 s in
  the test set-up).  Configurable.
* Timing: an accepted evacuation runs rebuilding -> rebuild_spawning ->
  task None (host still the source) -> host moved -> migration done over
  ``evacuation_time`` (default 1 s; measured 0.6-1.5 s), with the shares
  in model.EVACUATION_STEPS.  task_state skips
  rebuild_block_device_mapping and never shows powering-off.
* Two racing evacuations are deterministic: the first completes, the
  second's migration stays ``accepted`` for good, and the server then ends
  ERROR with "Instance instance-... already exists."
  (``race_outcome: active`` leaves it ACTIVE).  Real Nova ends either way.
* Scheduling: hosts that are up, enabled and have room for the server's
  allocation (VCPU, MEMORY_MB, DISK_GB: placement's check against the
  host's inventories, whose allocation ratios are 4 for VCPU and 1
  otherwise, reserved 0, max_unit the total, unless the host's config
  says otherwise); most free RAM (less reserved) wins, ties go to the
  earlier host.  No other filters.  A forced or pre-2.29 named host
  without room ends in NoValidHost/ERROR.  Source allocations stay until
  the source compute restarts (as in Nova).  An allocation is VCPU =
  vcpus, MEMORY_MB = ram, DISK_GB = ephemeral + swap (rounded up to GB)
  + the root disk unless the server has no image (booted from volume);
  flavor extra specs (``resources:*``, ``hw:cpu_policy``) are not
  applied.
* Placement: one resource provider per host (uuid: the hypervisor id,
  name: the host), GET only: the provider list (``name``, ``uuid``
  filters), a provider's inventories and usages; admin only; microversions
  1.0-1.39, without the version negotiation errors' details.  No
  allocations, traits, aggregates or allocation candidates API.
* Aggregates: list, show, create, add_host, remove_host, set_metadata
  (string or null values, as Nova validates them); no update or delete;
  they do not restrict scheduling.
* Work cast to a dead compute (stop/start on a killed host, an evacuation
  forced onto a killed host) waits until the host is revived, as an RPC
  message would; nothing times out.
* Only the APIs listed in doc/simulated-cloud.rst are served; anything
  else is 404.  The version list at / has v2.1 only (no legacy v2.0).  GET
  /v2.1/images/{id} (the image proxy) answers below 2.36 only, as in Nova;
  image properties are also served by a minimal Glance v2 (/image) and
  embedded in the server at >= 2.98.
* Server list filters: host, all_tenants, project_id/tenant_id (admin),
  status, name (a regular expression, as in Nova), and exact matches on
  node, image, flavor, vm_state, task_state, power_state,
  availability_zone, user_id, key_name, locked; limit/marker paging with
  [api] max_limit 1000.  Other filters (ip, tags, changes-since, sort
  keys) are ignored: sorting is always newest first.
* Body validation covers the schemas of the actions served and reproduces
  Nova's messages for type, enum, required and additionalProperties; other
  jsonschema keywords (formats, patterns) are not checked.  The lock body
  is not validated below 2.73.
* Policies are Nova's defaults, reduced to admin or project member; there
  is no reader-only or system scope distinction.
* Keystone: one domain (Default); projects ``admin``, ``service`` (user
  admin has the admin role on both) and ``demo`` (user demo, member);
  tokens valid one hour; password and application_credential methods only;
  project scope only (no domain or system scope).
* API latency is 0 unless configured per operation (``latency``; measured
  on Nova: evacuate POST 60-160 ms, a host-filtered list 0.44-0.5 s).
  A service's ``updated_at`` is the current time while its host is alive
  (Nova: the last report, every 10 s).
* Instance actions carry one event per step that matters (e.g.
  ``compute_rebuild_instance`` Success/Error), without tracebacks.
* Keystone's messages for malformed token requests are simplified; the
  401 for bad credentials is Keystone's.
* Server view: fixed private address, no volumes, security group
  ``default``; hostname is the lower-cased name.
"""
