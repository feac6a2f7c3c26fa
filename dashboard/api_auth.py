"""API tokens that end when they should.

Every JWT carries the user's token generation (Profile.token_generation) in its "gen" claim.
A password change, a deactivation or POST /api/v1/auth/logout/ bumps the generation, so every
access token issued before fails at once, and blacklists the user's outstanding refresh tokens
(simplejwt's token_blacklist app), so no rotated chain lives on.
"""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from dashboard.models import Profile

GENERATION_CLAIM = "gen"


def token_generation(user) -> int:
    found = Profile.objects.filter(user=user).values_list("token_generation", flat=True).first()
    return found or 0


class GenerationTokenObtainSerializer(TokenObtainPairSerializer):
    """SIMPLE_JWT["TOKEN_OBTAIN_SERIALIZER"]: the pair carries the user's generation."""

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token[GENERATION_CLAIM] = token_generation(user)
        return token


class GenerationJWTAuthentication(JWTAuthentication):
    """JWTAuthentication that refuses tokens of an older generation than the user's."""

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if validated_token.get(GENERATION_CLAIM, 0) != token_generation(user):
            raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
        return user
