"""Single sign-on with OpenID Connect: what Streamlit's ``st.login`` needs, and who a signed-in person is here.

Streamlit does the protocol (Authlib: discovery, authorization code with PKCE, the ID token's signature
checked against the provider's JWKS, issuer, audience, expiry and nonce) and keeps the token's claims in a
signed cookie. It reads its client settings only from a ``secrets.toml`` with an ``[auth]`` section, so
`docqa ui` writes one from docqa's settings into a private file (``<state_dir>/ui/secrets.toml``, 0600, in a
0700 folder) and points Streamlit at it (``--secrets.files``); nothing else reads it and it is rewritten at
every start. The claims then become a docqa ``User`` here, through the groups claim and two mappings in
settings, so the same roles and collection checks (``access.StaffActions``) apply as for local accounts.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from docqa.auth.errors import SignInError
from docqa.auth.users import Role, User, highest_role
from rag.errors import ConfigError
from rag.settings import AuthSettings, Settings

CALLBACK_PATH = "/oauth2callback"  # Streamlit's fixed callback route
DEFAULT_REDIRECT_URI = "http://localhost:{port}" + CALLBACK_PATH  # Streamlit fills in {port}


# -- who a signed-in person is ------------------------------------------------------------------------------
def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name; dots reach into objects ('realm_access.roles' in Keycloak's tokens)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def groups_of(claims: Mapping[str, Any], auth: AuthSettings) -> tuple[str, ...]:
    """The groups the token lists (a list, or one string as some providers send a single group)."""
    value = claim(claims, auth.oidc_groups_claim)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(str(g) for g in value)
    return ()


def user_from_claims(claims: Mapping[str, Any], auth: AuthSettings) -> User:
    """The docqa user for an ID token's claims: the highest role among the user's groups (else
    ``oidc_default_role``), and the collections their groups grant. SignInError when the groups give no role,
    or no collection while grants are configured: an unmapped person must not get in by default."""
    name = str(claim(claims, auth.oidc_name_claim) or claims.get("sub") or "").strip()
    if not name:
        raise SignInError(f"the provider's token names nobody (no '{auth.oidc_name_claim}' or 'sub' claim)")
    groups = groups_of(claims, auth)
    roles: list[Role] = [auth.oidc_group_roles[g] for g in groups if g in auth.oidc_group_roles]
    if not roles and auth.oidc_default_role is None:
        listed = ", ".join(groups) if groups else f"none in the '{auth.oidc_groups_claim}' claim"
        raise SignInError(
            f"{name} is signed in at the provider, but no group of theirs ({listed}) has a docqa role: an admin "
            "can map one in auth.oidc_group_roles"
        )
    role: Role = highest_role(roles) if roles else auth.oidc_default_role  # type: ignore[assignment]
    collections: tuple[str, ...] = ()
    if role != "admin" and auth.oidc_group_collections:
        granted = [c for g in groups for c in auth.oidc_group_collections.get(g, [])]
        if not granted:
            raise SignInError(
                f"{name} ({role}) has no collection: no group of theirs is granted one in "
                "auth.oidc_group_collections"
            )
        collections = () if "*" in granted else tuple(dict.fromkeys(granted))
    issued = claims.get("iat")
    at = float(issued) if isinstance(issued, int | float) else time.time()
    return User(name=name, role=role, collections=collections, created_at=at, last_sign_in_at=at)


def sign_in_id(claims: Mapping[str, Any]) -> str:
    """One string per sign-in (issuer, subject, issue time, nonce): the UI audits each sign-in once, though
    every new browser tab reads the same cookie."""
    return "|".join(str(claims.get(k, "")) for k in ("iss", "sub", "iat", "nonce"))


# -- what Streamlit needs ------------------------------------------------------------------------------------
def missing_settings(auth: AuthSettings) -> list[str]:
    """The settings OIDC cannot start without."""
    wanted = {
        "auth.oidc_issuer (DOCQA_AUTH_OIDC_ISSUER)": auth.oidc_issuer,
        "auth.oidc_client_id (DOCQA_AUTH_OIDC_CLIENT_ID)": auth.oidc_client_id,
        "auth.oidc_client_secret (DOCQA_AUTH_OIDC_CLIENT_SECRET)": auth.oidc_client_secret,
    }
    return [name for name, value in wanted.items() if not value]


def ui_dir(settings: Settings) -> Path:
    return settings.state_dir / "ui"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    """Replace the file atomically; it is 0600 from its first byte (mkstemp), never readable by others."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cookie_secret(settings: Settings) -> str:
    """``auth.oidc_cookie_secret``, else one made once for this data directory and kept beside the secrets."""
    if settings.auth.oidc_cookie_secret is not None:
        return settings.auth.oidc_cookie_secret.get_secret_value()
    path = _private_dir(ui_dir(settings)) / "cookie_secret"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string once non-ASCII stays literal (TOML has no surrogate escapes).
    return json.dumps(value, ensure_ascii=False)


def streamlit_secrets(settings: Settings) -> str:
    """The ``secrets.toml`` text for ``st.login``: ``[auth]`` with the provider as the default one."""
    auth = settings.auth
    missing = missing_settings(auth)
    if missing:
        raise ConfigError(f"auth.method 'oidc' needs {', '.join(missing)} (docs/auth.md)")
    assert auth.oidc_client_secret is not None and auth.oidc_client_id and auth.oidc_metadata_url
    values = {
        "redirect_uri": auth.oidc_redirect_uri or DEFAULT_REDIRECT_URI,
        "cookie_secret": cookie_secret(settings),
        "client_id": auth.oidc_client_id,
        "client_secret": auth.oidc_client_secret.get_secret_value(),
        "server_metadata_url": auth.oidc_metadata_url,
    }
    lines = ["# Written by `docqa ui` from docqa's settings at each start; edits here are lost.", "[auth]"]
    lines += [f"{key} = {_toml_string(value)}" for key, value in values.items()]
    lines += ["", "[auth.client_kwargs]", f"scope = {_toml_string(auth.oidc_scope)}", ""]
    return "\n".join(lines)


def write_streamlit_secrets(settings: Settings) -> Path:
    """Write the secrets file for the UI process; its path goes to ``streamlit run --secrets.files``."""
    text = streamlit_secrets(settings)
    path = _private_dir(ui_dir(settings)) / "secrets.toml"
    _write_private(path, text)
    return path
