"""Options of the Canvas simulator, and the small formatting helpers every Canvas module shares."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.httpapp import Response, json_response

# Permissions a token may lack (CanvasOptions.token_permissions), with the canvas-lms check each one gates.
PERMISSIONS = frozenset({
    "view_analytics",            # instructure/analytics lib/analytics/permissions.rb: course analytics
    "view_course_changes",       # app/controllers/course_audit_api_controller.rb: the course audit log
    "read_roster",               # app/graphql/types/course_type.rb: enrollmentsConnection (or view_all_grades,
    "view_all_grades",           #   manage_grades)
    "manage_grades",
})
# app/controllers/application_controller.rb render_unauthorized_action -> render_json_unauthorized (a user).
UNAUTHORIZED_BODY = {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}


@dataclass(frozen=True)
class CanvasOptions:
    tokens: frozenset[str] = frozenset({"canvas-sandbox-token"})
    zoom_base_url: str = "https://applications.zoom.us"
    seed: int = 42
    no_form_share: float = 0.03               # share of courses whose launch page lacks the LTI form
    audit_pagination: str = "bookmark"        # "bookmark" (opaque page=bookmark:...) or "numbered"
    lti_consumer_key: str = "sandbox-zoom-key"
    lti_shared_secret: str = "sandbox-zoom-secret"
    single_use_verifier: bool = True          # Lti::RedisMessageClient#fetch_and_delete_launch deletes it
    launch_ttl: float = 300.0                 # Lti::RedisMessageClient::TTL (5 minutes)
    token_permissions: frozenset[str] | None = None   # what the tokens may do; None = everything
    roster_churn: float = 0.0                 # GraphQL: chance a follow-up page finds its course's rows moved

    def __post_init__(self) -> None:
        if self.token_permissions is not None:
            unknown = set(self.token_permissions) - PERMISSIONS
            if unknown:
                raise ValueError(f"unknown Canvas permissions {sorted(unknown)}; known: {sorted(PERMISSIONS)}")
        if not 0.0 <= self.roster_churn <= 1.0:
            raise ValueError("roster_churn is a probability (0..1)")
        if self.launch_ttl <= 0:
            raise ValueError("launch_ttl must be > 0")

    def allows(self, *permissions: str) -> bool:
        """Whether the tokens hold any of `permissions` (Canvas's grants_any_right?)."""
        return self.token_permissions is None or any(p in self.token_permissions for p in permissions)


def unauthorized() -> Response:
    return json_response(UNAUTHORIZED_BODY, status=401)


def canvas_time(value: datetime | None) -> str | None:
    """Canvas API timestamps: UTC, whole seconds, `Z` suffix."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_uuid(kind: str, ident: int, seed: int) -> str:
    return hashlib.blake2b(f"{seed}|{kind}|{ident}".encode(), digest_size=20).hexdigest()
