"""Serve real Keystone's WSGI app on host:port until SIGTERM.  Run by the
python of the Keystone venv (tools/keystone-venv.sh), never by the
project's: ``KEYSTONE_LISTEN=HOST:PORT python keystone_server.py``, with
OS_KEYSTONE_CONFIG_FILES naming the keystone.conf (no arguments: Keystone
parses sys.argv as its own options).  Prints one line,
"keystone ready at URL", once it listens."""

import os
import signal
import socketserver
import sys
from wsgiref import simple_server


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = False


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main():
    host, _, port = os.environ["KEYSTONE_LISTEN"].rpartition(":")
    port = int(port)
    from keystone.server import wsgi

    application = wsgi.initialize_public_application()
    httpd = simple_server.make_server(host, port, application,
                                      server_class=_Server,
                                      handler_class=_Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"keystone ready at http://{host}:{port}/v3", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
