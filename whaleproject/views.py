from django.conf import settings
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings

from whaleproject import health as health_checks


@extend_schema(
    responses={
        200: inline_serializer(
            "Health",
            {"status": serializers.CharField(), "checks": serializers.DictField()},
        ),
        503: inline_serializer(
            "HealthFailing",
            {"status": serializers.CharField(), "checks": serializers.DictField()},
        ),
    },
)
@never_cache
@api_view(["GET"])
@authentication_classes(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
@permission_classes([AllowAny])
def health(request):
    """200 when every part is up, 503 otherwise.

    Load balancers call it anonymously and get a pass/fail per part; staff also get the details
    (latencies, worker names, heartbeat ages), which could help an attacker map the deployment.
    Anonymous answers are cached for WHALE_HEALTH_CACHE_SECONDS; staff answers are live.
    """
    if request.user.is_authenticated and request.user.is_staff:
        ok, checks = health_checks.overall()
        body = {name: {"ok": c.ok, **c.detail} for name, c in checks.items()}
    else:
        ok, passes = health_checks.anonymous_overall(settings.WHALE_HEALTH_CACHE_SECONDS)
        body = {name: {"ok": passed} for name, passed in passes.items()}
    return Response({"status": "ok" if ok else "fail", "checks": body}, status=200 if ok else 503)
