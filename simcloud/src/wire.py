"""HTTP requests and responses as the simulator's handlers see them."""

import dataclasses
import json
import typing
import urllib.parse


class BadJSON(Exception):
    pass


@dataclasses.dataclass
class Request:
    method: str
    path: str                  # without the query string
    query_string: str
    headers: object            # email.message.Message (case-insensitive)
    body: bytes
    base_url: str              # http://127.0.0.1:PORT

    @property
    def query(self):
        """{name: [values]} in order, as webob's req.GET.getall sees it."""
        return urllib.parse.parse_qs(self.query_string,
                                     keep_blank_values=True)

    def json(self):
        if not self.body:
            raise BadJSON("no body")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadJSON(str(exc)) from None


@dataclasses.dataclass
class Response:
    status: int
    body: object = None        # JSON-serialisable, or None for no body
    headers: list = dataclasses.field(default_factory=list)

    def payload(self):
        """(content type, bytes) of the body."""
        if self.body is None:
            return None, b""
        if isinstance(self.body, str):
            return "text/plain; charset=UTF-8", self.body.encode()
        return "application/json", json.dumps(self.body).encode()


@dataclasses.dataclass
class Routed:
    """A request matched to its operation, ready to run: what the server
    needs to apply latency and faults and to log the call."""
    operation: str
    server_id: str | None
    version: tuple | None     # the negotiated microversion, if any
    run: typing.Callable      # () -> Response
    project_id: str | None = None
