"""The university's API gateway ("API Directory") in front of Canvas: OAuth2 client credentials + proxy.

`POST /aa/oauth2/token` issues Bearer tokens for the configured client and scope; they expire after
`token_ttl` seconds. `/{scope_prefix}/accounts/...` answer exactly like Canvas (the same handlers as
`sandbox.canvas_rest`) once the request carries a live gateway token and the `x-ibm-client-id` header.
Error bodies follow IBM API Connect's `{"httpCode", "httpMessage", "moreInformation"}` shape (inferred).
The gateway runs on its own SimServer, so its throttle bucket (keyed by gateway token) and its statistics
are separate from Canvas's.

A proxy passes Canvas's answer on as it is, and Canvas builds its `Link` header (and every other absolute URL)
from its own URL helpers (canvas-lms `lib/api.rb` `build_links_hash`, `accounts_controller.rb#courses_api` with
`api_v1_account_courses_url`): absolute URLs on the Canvas host under `/api/v1/...`. Nothing public says the
university's gateway rewrites them, so by default it does not; `GatewayOptions.rewrite_links` keeps the
friendlier links on the gateway under the scope prefix. The Canvas base URL is taken from the CanvasRest once
its server has started (or set `Gateway.canvas_base_url`).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sandbox.canvas_rest import CanvasRest
from sandbox.httpapp import App, Request, Response, json_response

TOKEN_PATH = "/aa/oauth2/token"


@dataclass(frozen=True)
class GatewayOptions:
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    scope: str = "canvasreadonly"              # CANVAS.API_SUBSCRIPTION_NAME
    scope_prefix: str = "aa/CanvasReadOnly"    # CANVAS.API_SCOPE_PREFIX
    token_ttl: float = 3600.0                  # seconds
    rewrite_links: bool = False                # True: Link headers point at the gateway, not at Canvas


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status=status)


def gateway_error(status: int, message: str, detail: str) -> Response:
    return json_response({"httpCode": str(status), "httpMessage": message, "moreInformation": detail},
                         status=status)


class TokenStore:
    """Issued gateway tokens and their expiry times (clock-injectable for tests)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            # Forget expired tokens so a long benchmark does not grow the table forever.
            self._expiry = {t: at for t, at in self._expiry.items() if at > now}
            self._expiry[token] = now + self._ttl
        return token

    def expire_all(self) -> None:
        """Every token issued so far stops working (a day later they have all expired)."""
        with self._lock:
            self._expiry.clear()

    def is_live(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._expiry.get(token, float("-inf")) > self._clock()


class Gateway:
    def __init__(self, rest: CanvasRest, options: GatewayOptions | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.rest = rest
        self.options = options or GatewayOptions()
        self.tokens = TokenStore(self.options.token_ttl, clock)
        self.canvas_base_url: str | None = None    # None: the CanvasRest's own, once its server started
        self.prefix = "/" + self.options.scope_prefix.strip("/")

    def token(self, request: Request) -> Response:
        form = request.form()

        def field(name: str) -> str:
            values = form.get(name)
            return values[-1] if values else ""

        if field("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if field("client_id") != self.options.client_id or field("client_secret") != self.options.client_secret:
            return oauth_error(401, "invalid_client", "Client authentication failed")
        if field("scope").strip().lower() != self.options.scope.lower():
            return oauth_error(400, "invalid_scope", "The requested scope is not allowed for this client")
        token = self.tokens.issue()
        body = {"token_type": "Bearer", "access_token": token, "expires_in": int(self.options.token_ttl),
                "consented_on": int(time.time()), "scope": self.options.scope}
        return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def guarded(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def check(request: Request, **params: Any) -> Response:
            client_id = request.headers.get("x-ibm-client-id")
            if client_id != self.options.client_id:
                return gateway_error(401, "Unauthorized", "Client id not registered.")
            if not self.tokens.is_live(request.bearer_token()):
                return gateway_error(401, "Unauthorized", "Cannot pass the security checks that are required "
                                                          "by the target API or operation, Enable debug headers "
                                                          "for more details.")
            return handler(self.forwarded(request), **params)
        return check

    def forwarded(self, request: Request) -> Request:
        """The request as Canvas sees it: its own host and /api/v1 path (unless links are rewritten)."""
        if self.options.rewrite_links:
            return request
        base = self.canvas_base_url or self.rest.base_url
        if base is None:
            raise RuntimeError("the gateway does not know Canvas's base URL: start Canvas first or set "
                               "Gateway.canvas_base_url")
        return replace(request, base_url=base, path="/api/v1" + request.path.removeprefix(self.prefix))


def build_gateway_app(rest: CanvasRest, options: GatewayOptions | None = None,
                      clock: Callable[[], float] = time.time) -> tuple[App, Gateway]:
    """An App serving the token endpoint and the gateway's Canvas paths."""
    gateway = Gateway(rest, options, clock)
    app = App()                                # throttle key: the gateway Bearer token
    prefix = gateway.prefix
    app.add_route("POST", TOKEN_PATH, gateway.token)
    app.add_route("GET", f"{prefix}/accounts/{{account_id:int}}/terms/{{term_id}}", gateway.guarded(rest.term))
    app.add_route("GET", f"{prefix}/accounts/{{account_id:int}}", gateway.guarded(rest.account))
    app.add_route("GET", f"{prefix}/accounts/{{account_id:int}}/courses", gateway.guarded(rest.account_courses))
    return app, gateway
