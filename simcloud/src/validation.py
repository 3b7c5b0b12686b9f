"""Request body validation with the messages Nova's jsonschema validator
produces (nova/api/validation/validators.py), for the few schemas the
simulator serves.  Keywords are checked in jsonschema's order: type,
enum, properties, required, additionalProperties; the first error wins."""

from instance_ha.simcloud.errors import NovaError

# nova/api/validation/parameter_types.py boolean
BOOLEAN_VALUES = [True, "True", "TRUE", "true", "1", "ON", "On", "on",
                  "YES", "Yes", "yes", False, "False", "FALSE", "false",
                  "0", "OFF", "Off", "off", "NO", "No", "no"]
TRUE_VALUES = {"true", "1", "on", "yes"}

BOOLEAN = {"enum": BOOLEAN_VALUES}
HOSTNAME = {"type": "string", "minLength": 1, "maxLength": 255}
REASON = {"type": "string", "minLength": 1, "maxLength": 255}
_TYPES = {"object": dict, "string": str, "null": type(None)}


def to_bool(value):
    if isinstance(value, bool):
        return value
    return str(value).lower() in TRUE_VALUES


class _Invalid(Exception):
    def __init__(self, path, instance, message):
        super().__init__(message)
        self.path = path
        self.instance = instance
        self.message = message


def _type_ok(instance, expected):
    names = expected if isinstance(expected, list) else [expected]
    return any(isinstance(instance, _TYPES[name]) for name in names)


def _check(schema, instance, path):
    expected = schema.get("type")
    if expected and not _type_ok(instance, expected):
        raise _Invalid(path, instance,
                       f"{instance!r} is not of type {expected!r}")
    if "enum" in schema and instance not in schema["enum"]:
        raise _Invalid(path, instance,
                       f"{instance!r} is not one of {schema['enum']!r}")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            raise _Invalid(path, instance, f"{instance!r} is too short")
        if len(instance) > schema.get("maxLength", len(instance)):
            raise _Invalid(path, instance, f"{instance!r} is too long")
    if not isinstance(instance, dict):
        return
    properties = schema.get("properties", {})
    for name, subschema in properties.items():
        if name in instance:
            _check(subschema, instance[name], path + [name])
    for name in schema.get("required", ()):
        if name not in instance:
            raise _Invalid(path, instance,
                           f"{name!r} is a required property")
    if schema.get("additionalProperties") is False:
        extra = [name for name in instance if name not in properties]
        if extra:
            listed = ", ".join(repr(name) for name in extra)
            verb = "was" if len(extra) == 1 else "were"
            raise _Invalid(path, instance,
                           "Additional properties are not allowed "
                           f"({listed} {verb} unexpected)")


def validate(schema, body):
    """NovaError 400 with Nova's message when body does not fit schema."""
    try:
        _check(schema, body, [])
    except _Invalid as exc:
        if exc.path:
            detail = (f"Invalid input for field/attribute {exc.path[-1]}. "
                      f"Value: {exc.instance}. {exc.message}")
        else:
            detail = exc.message
        raise NovaError(400, detail) from None


def action_body(name, properties, required=(), nullable=False):
    """{"<name>": {...}} as Nova's action schemas write it."""
    inner = {"type": ["object", "null"] if nullable else "object",
             "properties": properties, "additionalProperties": False}
    if required:
        inner["required"] = list(required)
    return {"type": "object", "properties": {name: inner},
            "required": [name], "additionalProperties": False}


# nova/api/openstack/compute/schemas/evacuate.py
EVACUATE_V21 = action_body("evacuate", {
    "host": HOSTNAME, "onSharedStorage": BOOLEAN,
    "adminPass": {"type": "string"}}, required=["onSharedStorage"])
EVACUATE_V214 = action_body("evacuate", {
    "host": HOSTNAME, "adminPass": {"type": "string"}})
EVACUATE_V229 = action_body("evacuate", {
    "host": HOSTNAME, "adminPass": {"type": "string"}, "force": BOOLEAN})


def evacuate_schema(version):
    if version < (2, 14):
        return EVACUATE_V21
    if (2, 29) <= version <= (2, 67):
        return EVACUATE_V229
    return EVACUATE_V214


# nova/api/openstack/compute/schemas/admin_actions.py reset_state
RESET_STATE = action_body("os-resetState", {
    "state": {"type": "string", "enum": ["active", "error"]}},
    required=["state"])
# schemas/lock_server.py: the body value is null, or at 2.73 an object
# with an optional locked_reason.
LOCK_V273 = action_body("lock", {"locked_reason": REASON}, nullable=True)

# nova/api/openstack/compute/schemas/services.py
SERVICE_UPDATE_V21 = {
    "type": "object",
    "properties": {"host": HOSTNAME, "binary": REASON,
                   "disabled_reason": REASON},
    "required": ["host", "binary"], "additionalProperties": False}
SERVICE_UPDATE_V211 = {
    "type": "object",
    "properties": {"host": HOSTNAME, "binary": REASON,
                   "disabled_reason": REASON, "forced_down": BOOLEAN},
    "required": ["host", "binary"], "additionalProperties": False}
SERVICE_UPDATE_V253 = {
    "type": "object",
    "properties": {"status": {"type": "string",
                              "enum": ["enabled", "disabled"]},
                   "disabled_reason": REASON, "forced_down": BOOLEAN},
    "additionalProperties": False}

# schemas/aggregates.py
AGGREGATE_HOST = {"type": "object", "properties": {"host": HOSTNAME},
                  "required": ["host"], "additionalProperties": False}
AGGREGATE_CREATE = {
    "type": "object",
    "properties": {"aggregate": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "availability_zone": {"type": ["string", "null"],
                                  "minLength": 1, "maxLength": 255}},
        "required": ["name"], "additionalProperties": False}},
    "required": ["aggregate"], "additionalProperties": False}
AGGREGATE_METADATA = {
    "type": "object",
    "properties": {"metadata": {"type": "object"}},
    "required": ["metadata"], "additionalProperties": False}
