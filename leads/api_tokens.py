"""`/api/v1/tokens/`: a user's own API tokens, listed, made and revoked by their owner.

Every role may manage its own tokens and nobody else's: the queryset is the caller's tokens
only, so another user's token is a 404. The key is in the creation answer and nowhere else.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from . import permissions
from .models import ApiToken
from .tokens import issue_token


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    days = serializers.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text=_("Days the token is valid; API_TOKEN_DEFAULT_DAYS when left out."),
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(help_text=_("Shown once: only its hash is stored."))

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ApiTokenSerializer
    role_actions = {
        "list": permissions.EVERY_ROLE,
        "create": permissions.EVERY_ROLE,
        "destroy": permissions.EVERY_ROLE,
        "options": permissions.EVERY_ROLE,
    }

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)  # type: ignore[misc]  # signed in: RoleActionPermission

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = ApiTokenCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        token, key = issue_token(
            user=request.user,
            name=incoming.validated_data["name"],
            days=incoming.validated_data.get("days", settings.API_TOKEN_DEFAULT_DAYS),
        )
        token.key = key  # type: ignore[attr-defined]  # shown in this answer only
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)
