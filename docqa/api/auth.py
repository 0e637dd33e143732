"""Who is calling and what they may do: Bearer key -> ``ApiKey``, then origin, rate limit, scope and
collection checks. Widget keys are public (they sit in web pages), so what they can reach is narrow:
asking, in the collections they are bound to, from the origins they list. Staff keys carry a role of the staff
UI's, checked here on each route as ``docqa.auth.access`` checks it for signed-in users (see ``KEY_ROLES``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from docqa.api.errors import ApiError
from docqa.api.keys import ApiKey, normalize_origin
from docqa.api.ratelimit import RateLimiter
from docqa.api.state import ApiState, get_state
from docqa.auth.users import ROLES, Role, role_at_least
from rag.errors import DocqaError
from rag.store import validate_collection_name

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="docqa key",
    description="An API key from `docqa keys create`: staff (reader, editor or admin) or widget (ask only).",
)

# What each role of a staff key may do, as a refusal says it (the staff UI's roles: docs/auth.md).
KEY_ROLES: dict[Role, str] = {
    "reader": "ask, chat and list documents (read sources) in its collections",
    "editor": "ask, chat, list, upload and delete documents and follow their ingest jobs in its collections",
    "admin": "do everything in its collections, and with no collection limit also /metrics",
}


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _refuse(state: ApiState, status: int, reason: str, message: str) -> ApiError:
    state.metrics.auth_failures.labels(reason).inc()
    headers = {"WWW-Authenticate": 'Bearer realm="docqa"'} if status == 401 else None
    return ApiError(status, message, type=reason, headers=headers)


def request_origin(request: Request) -> str | None:
    """The browser's Origin header, normalised; ``"null"`` or garbage becomes a value no key lists."""
    raw = request.headers.get("origin")
    if raw is None:
        return None
    try:
        return normalize_origin(raw)
    except DocqaError:
        return f"invalid:{raw[:100]}"


def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> ApiKey:
    """Every non-public route depends on this (a sync dependency: the key lookup is a SQLite read)."""
    state = get_state(request)
    if credentials is None or not credentials.credentials:
        raise _refuse(
            state,
            401,
            "missing_key",
            "missing API key: send 'Authorization: Bearer KEY' (create one with `docqa keys create`)",
        )
    key = state.keys.verify(credentials.credentials.strip())
    if key is None:
        raise _refuse(state, 401, "invalid_key", "invalid or revoked API key")
    origin = request_origin(request)
    if key.scope == "widget" and origin is None:
        raise _refuse(
            state,
            403,
            "origin_required",
            "widget keys work only from the web pages of the origins they list (no Origin header was sent); "
            "use a staff key from servers",
        )
    if origin is not None and key.origins and origin not in key.origins:
        raise _refuse(state, 403, "origin_not_allowed", f"this key may not be used from origin '{origin}'")
    _rate_limit(state, key, request)
    request.state.api_key = key
    return key


def _rate_limit(state: ApiState, key: ApiKey, request: Request) -> None:
    """A staff key has one bucket. A widget key is shared by every visitor of a site, so each visitor
    (client address; behind a proxy, uvicorn takes it from X-Forwarded-For for trusted proxies) has a
    bucket of its own, and the key as a whole a ceiling, so one visitor cannot starve the others."""
    api = state.settings.api
    if key.scope == "widget":
        visitor = request.client.host if request.client else "unknown"
        wait, who = state.limiter.take(f"{key.id}|{visitor}"), "for this visitor"
        if wait <= 0:
            wait, who = state.widget_limiter.take(key.id), "for all visitors of this site together"
            per_minute = api.widget_key_rate_per_minute
        else:
            per_minute = api.rate_limit_per_minute
    else:
        wait, who, per_minute = state.limiter.take(key.id), "for this key", api.rate_limit_per_minute
    if wait > 0:
        state.metrics.rate_limited.labels(key.id).inc()
        raise ApiError(
            429,
            f"rate limit of {per_minute} requests per minute reached {who}; retry in {wait:.0f} s",
            type="rate_limited",
            headers={"Retry-After": RateLimiter.retry_after_header(wait)},
        )


def require_staff(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    if key.scope != "staff":
        raise _refuse(
            get_state(request), 403, "scope", f"a {key.scope} key may only ask questions; this needs a staff key"
        )
    return key


def require_staff_all(request: Request, key: Annotated[ApiKey, Depends(require_staff)]) -> ApiKey:
    """Admin keys for every collection: what spans all keys and collections (metrics list every key id)."""
    if not key.at_least("admin"):
        role = key.role
        message = f"this needs an admin key for all collections; {_a(role)} {role} key may {KEY_ROLES[role]}"
        raise _refuse(get_state(request), 403, "role", message)
    if key.collections:
        limited = ", ".join(key.collections)
        message = f"this needs an admin key for all collections; this one is limited to {limited}"
        raise _refuse(get_state(request), 403, "scope", message)
    return key


def require_role(minimum: Role, action: str) -> Callable[..., ApiKey]:
    """A dependency: a staff key of at least ``minimum``; a lower one gets a 403 that says what it may do."""

    def check(request: Request, key: Annotated[ApiKey, Depends(require_staff)]) -> ApiKey:
        if not key.at_least(minimum):
            needs = " or ".join(r for r in ROLES if role_at_least(r, minimum))
            message = (
                f"{_a(key.role)} {key.role} key may not {action} (that needs {_a(needs)} {needs} key); "
                f"it may {KEY_ROLES[key.role]}"
            )
            raise _refuse(get_state(request), 403, "role", message)
        return key

    return check


AnyKey = Annotated[ApiKey, Depends(authenticate)]
StaffKey = Annotated[ApiKey, Depends(require_staff)]  # any role: reading, in the key's collections
AdminKey = Annotated[ApiKey, Depends(require_staff_all)]


def authorize_collection(state: ApiState, key: ApiKey, collection: str) -> str:
    """The validated collection name, if this key may use it. A widget key gets the same 403 whether the
    collection exists or not, so it learns nothing about collections it is not bound to."""
    try:
        name = validate_collection_name(collection)
    except DocqaError as exc:
        raise ApiError(422, str(exc), field="collection") from None
    if not key.can_use(name):
        raise _refuse(state, 403, "collection_forbidden", f"this key may not use collection '{name}'")
    return name
