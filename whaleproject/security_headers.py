"""Content-Security-Policy and Permissions-Policy on every response.

Scripts come only from this origin's files (no inline script, no eval); styles may be inline
(the urgency bars set a width attribute), images may be data: URLs (Swagger UI), and the API
docs' ReDoc runs its worker from a blob:. Referrer-Policy comes from SECURE_REFERRER_POLICY.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)


def content_security_policy(site_url: str) -> str:
    site = urlsplit(site_url)
    socket_origin = f"{'wss' if site.scheme == 'https' else 'ws'}://{site.netloc}"
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": f"'self' {socket_origin}",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy(settings.SITE_URL)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
