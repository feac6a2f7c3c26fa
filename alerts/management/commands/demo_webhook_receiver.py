"""A tiny webhook receiver for `make demo`: checks each delivery's Standard Webhooks signature
against the demo endpoint's secret and prints one line per delivery. Not for production."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.management.commands.create_demo_alerts import DEMO_DESCRIPTION
from alerts.models import WebhookEndpoint


class Command(BaseCommand):
    help = "Receive the demo's webhook deliveries on 127.0.0.1 and print them."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8099)

    def handle(self, *args, port, **options):
        write = self.stdout.write

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server hook name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                verdict = "signature ok"
                endpoint = WebhookEndpoint.objects.filter(description=DEMO_DESCRIPTION).last()
                try:
                    if endpoint is None:
                        raise WebhookVerificationError("no demo endpoint")
                    Webhook(endpoint.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    verdict = f"signature NOT verified ({exc})"
                write(f"{self.headers.get('webhook-id', '?')}: {len(body)} bytes, {verdict}")
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        write(f"Demo webhook receiver on http://127.0.0.1:{port}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
