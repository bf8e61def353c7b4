#!/usr/bin/python3
"""A small JWK Set server for tests/e2e/jwt_keys_spec.lua: serves the files of DIR, read
at every request, so that a test rotates keys by rewriting them.

  jwt_keys_server.py PORT DIR [CERT KEY]      (https with CERT and KEY, else http)

  GET /keys                               DIR/jwks.json
  GET /.well-known/openid-configuration   {"issuer": ..., "jwks_uri": BASE/keys}
  GET /realm/.well-known/openid-configuration   the same (an issuer with a path)
Every request is appended to DIR/hits.log ("PATH\\n"). DIR/cache-control, when present,
is sent as Cache-Control; DIR/delay (seconds) delays the answers; DIR/status replaces
200 for /keys.
"""
import http.server
import json
import os
import ssl
import sys
import time

PORT, DIR = int(sys.argv[1]), sys.argv[2]
TLS = len(sys.argv) > 4
BASE = ("https://localhost:%d" if TLS else "http://127.0.0.1:%d") % PORT


def read(name):
    try:
        with open(os.path.join(DIR, name), "rb") as f:
            return f.read()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with open(os.path.join(DIR, "hits.log"), "a") as f:
            f.write(self.path + "\n")
        delay = read("delay")
        if delay:
            time.sleep(float(delay))
        status, body, extra = 404, b'{"message":"not found"}', {}
        if self.path == "/keys":
            body = read("jwks.json") or b'{"keys":[]}'
            status = int((read("status") or b"200").strip())
            cc = read("cache-control")
            if cc:
                extra["Cache-Control"] = cc.decode().strip()
        elif self.path.endswith("/.well-known/openid-configuration"):
            issuer = BASE + self.path[: -len("/.well-known/openid-configuration")]
            body = json.dumps({"issuer": issuer, "jwks_uri": BASE + "/keys"}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
if TLS:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
