"""A webhook receiver to start from: checks Helpmate's signature, ignores repeats, prints each event.

    python examples/webhook_receiver.py --port 9000 --secret whsec_...   # the secret `helpmate webhooks add` printed
    export HELPMATE_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32              # webhooks reach public addresses only, else
    helpmate webhooks add http://127.0.0.1:9000/ && helpmate webhooks test 1

Only the standard library, so the rule is plain to port to any language: the header
``X-Helpmate-Signature: t=<unix time>,v1=<hex>`` holds HMAC-SHA256 of ``"<t>." + body`` keyed with
the secret; refuse a body whose signature differs or whose ``t`` is more than five minutes away.
A real desk would create or update its ticket where this prints.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300


def signed(secret: str, header: str, body: bytes) -> bool:
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) <= TOLERANCE_S and hmac.compare_digest(expected, fields.get("v1", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the signing secret `helpmate webhooks add` printed")
    args = parser.parse_args()
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not signed(args.secret, self.headers.get("X-Helpmate-Signature", ""), body):
                self.send_response(401)
                self.end_headers()
                return
            delivery = self.headers.get("X-Helpmate-Delivery", "")
            if delivery not in seen:  # a delivery whose answer was lost comes again: act on it once
                seen.add(delivery)
                event = json.loads(body)
                print(f"{event['event']} (delivery {delivery}, knowledge base {event['kb']}): "
                      f"{json.dumps(event['data'], ensure_ascii=False)}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
