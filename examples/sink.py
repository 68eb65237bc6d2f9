#!/usr/bin/env python3
"""A destination for local testing: prints each delivery and checks its
Standard Webhooks signature. Standard library only.

    python3 examples/sink.py [port] [whsec_secret]
"""
import base64
import hashlib
import hmac
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9090
SECRET = sys.argv[2] if len(sys.argv) > 2 else "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        signed = f"{msg_id}.{ts}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        given = self.headers.get("webhook-signature", "").split(" ")
        ok = any(hmac.compare_digest(expected, s) for s in given)
        print(f"{self.path} id={msg_id} type={self.headers.get('sluice-event-type', '')} "
              f"signature={'valid' if ok else 'INVALID'} body={body.decode(errors='replace')}", flush=True)
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"sink listening on http://127.0.0.1:{PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Sink).serve_forever()
