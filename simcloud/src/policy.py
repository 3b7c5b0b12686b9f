"""Nova's default policies for the APIs served: who may do what.

ADMIN rules need the admin role; PROJECT rules are allowed to an admin and
to a member of the server's project (others do not even find the server:
common.get_instance is project-scoped and answers 404)."""

from instance_ha.simcloud import errors

ADMIN = "admin"
PROJECT = "project"

RULES = {
    "os_compute_api:os-evacuate": ADMIN,
    "os_compute_api:os-admin-actions:reset_state": ADMIN,
    "os_compute_api:os-services:list": ADMIN,
    "os_compute_api:os-services:update": ADMIN,
    "os_compute_api:os-migrations:index": ADMIN,
    "os_compute_api:os-hypervisors:list": ADMIN,
    "os_compute_api:os-hypervisors:list-detail": ADMIN,
    "os_compute_api:os-hypervisors:show": ADMIN,
    "os_compute_api:os-hypervisors:search": ADMIN,
    "os_compute_api:os-hypervisors:servers": ADMIN,
    "os_compute_api:os-aggregates:index": ADMIN,
    "os_compute_api:os-aggregates:show": ADMIN,
    "os_compute_api:os-aggregates:add_host": ADMIN,
    "os_compute_api:os-aggregates:remove_host": ADMIN,
    "os_compute_api:os-aggregates:set_metadata": ADMIN,
    "os_compute_api:servers:detail:get_all_tenants": ADMIN,
    "os_compute_api:servers:index:get_all_tenants": ADMIN,
    "os_compute_api:os-lock-server:unlock:unlock_override": ADMIN,
    "os_compute_api:os-instance-actions:events": ADMIN,
    "os_compute_api:os-extended-server-attributes": ADMIN,
    "os_compute_api:servers:show:host_status": ADMIN,
    "os_compute_api:servers:start": PROJECT,
    "os_compute_api:servers:stop": PROJECT,
    "os_compute_api:os-lock-server:lock": PROJECT,
    "os_compute_api:os-lock-server:unlock": PROJECT,
    "os_compute_api:os-instance-actions:list": PROJECT,
    "os_compute_api:os-instance-actions:show": PROJECT,
}


def allowed(context, rule, project_id=None):
    if context.is_admin:
        return True
    if RULES[rule] == ADMIN:
        return False
    return project_id is None or project_id == context.project_id


def enforce(context, rule, project_id=None):
    if not allowed(context, rule, project_id):
        raise errors.policy(rule)
