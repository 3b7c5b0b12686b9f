"""Errors shaped as Nova and Keystone shape them on the wire."""

# nova/api/openstack/wsgi.py Fault._fault_names
FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

NOT_FOUND = "The resource could not be found."
UNEXPECTED = ("Unexpected API Error. Please report this at "
              "http://bugs.launchpad.net/nova/ and attach the Nova API log "
              "if possible.\n<class 'nova.exception.NovaException'>")


class NovaError(Exception):
    """An error answer of the compute API."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self):
        name = FAULT_NAMES.get(self.code, "computeFault")
        return {name: {"code": self.code, "message": self.message}}


def policy(rule):
    return NovaError(403, f"Policy doesn't allow {rule} to be performed.")


def invalid_state(action, server_id, attr, state):
    """common.raise_http_conflict_for_instance_invalid_state."""
    return NovaError(409, f"Cannot '{action}' instance {server_id} while it "
                          f"is in {attr} {state}")


def instance_not_found(server_id):
    return NovaError(404, f"Instance {server_id} could not be found.")


class KeystoneError(Exception):
    """An error answer of the identity API."""

    TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
              404: "Not Found"}

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self):
        return {"error": {"code": self.code, "message": self.message,
                          "title": self.TITLES.get(self.code, "Error")}}


def unauthenticated():
    return KeystoneError(
        401, "The request you have made requires authentication.")
