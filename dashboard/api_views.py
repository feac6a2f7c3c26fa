"""REST API views of the accounts side: logging out of the API."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api_auth import GenerationJWTAuthentication
from dashboard.models import revoke_api_tokens
from detection.api.serializers import ErrorSerializer


@extend_schema(tags=["auth"], request=None, responses={204: None, 401: ErrorSerializer})
class LogoutView(APIView):
    """Revoke every API token of the caller (access and refresh, on every device)."""

    # Tokens only: a browser session ends at /accounts/logout/, which has CSRF protection.
    authentication_classes = [GenerationJWTAuthentication]
    permission_classes = [IsAuthenticated]

    def post(self, request):
        revoke_api_tokens(request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GenerationJWTScheme(SimpleJWTScheme):
    """The OpenAPI "jwtAuth" scheme for GenerationJWTAuthentication (a bearer JWT, as before)."""

    target_class = "dashboard.api_auth.GenerationJWTAuthentication"
