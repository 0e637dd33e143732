"""A small, real OpenID Connect provider for tests, on 127.0.0.1: discovery document, an authorization
endpoint that approves the configured test user at once, a token endpoint (authorization code, client secret,
PKCE S256) that issues an RS256-signed ID token, and the JWKS. Plain ``http.server`` and joserfc.

``tamper`` makes the next ID tokens bad in one of two ways a relying party must catch: 'foreign_key' signs
with a key that is not in the JWKS (same key id), 'altered_claims' signs a token and then swaps in other
claims (more groups) without signing again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

KID = "test-key-1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Provider:
    """The provider's state; a test sets ``user`` (the claims of whoever 'signs in' next) and ``tamper``."""

    client_id: str
    client_secret: str
    url: str = ""
    user: dict[str, Any] = field(default_factory=dict)
    tamper: str | None = None  # None, 'foreign_key' or 'altered_claims'
    tokens_issued: int = 0
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": KID}))
    foreign: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": KID}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return self.url

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
        }

    def id_token(self, nonce: str | None, user: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, **user}
        if nonce:
            claims["nonce"] = nonce
        header = {"alg": "RS256", "kid": KID, "typ": "JWT"}
        if self.tamper == "foreign_key":
            return jwt.encode(header, claims, self.foreign)
        token = jwt.encode(header, claims, self.key)
        if self.tamper == "altered_claims":
            head, _, signature = token.split(".")
            altered = {**claims, "groups": [*user.get("groups", []), "docqa-admins"]}
            return f"{head}.{_b64url(json.dumps(altered).encode())}.{signature}"
        return token


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.metadata())
            elif url.path == "/jwks":
                self._json(200, {"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                self._authorize(query)
            else:
                self._json(404, {"error": "not_found"})

        def _authorize(self, query: dict[str, str]) -> None:
            if query.get("client_id") != provider.client_id or query.get("response_type") != "code":
                self._json(400, {"error": "invalid_request"})
                return
            code = secrets.token_urlsafe(16)
            with provider.lock:  # the test user approves at once
                provider.codes[code] = {
                    "redirect_uri": query["redirect_uri"],
                    "nonce": query.get("nonce"),
                    "challenge": query.get("code_challenge"),
                    "user": dict(provider.user),
                }
            back = {"code": code, **({"state": query["state"]} if "state" in query else {})}
            self.send_response(302)
            self.send_header("Location", f"{query['redirect_uri']}?{urlencode(back)}")
            self.end_headers()

        def do_POST(self) -> None:
            if urlparse(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            if client_id != provider.client_id or secret != provider.client_secret:
                self._json(401, {"error": "invalid_client"})
                return
            with provider.lock:
                grant = provider.codes.pop(form.get("code", ""), None)
            if grant is None or form.get("grant_type") != "authorization_code":
                self._json(400, {"error": "invalid_grant"})
                return
            if form.get("redirect_uri") != grant["redirect_uri"]:
                self._json(400, {"error": "invalid_grant", "error_description": "redirect_uri differs"})
                return
            if grant["challenge"]:
                verifier = form.get("code_verifier", "")
                if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
                    self._json(400, {"error": "invalid_grant", "error_description": "PKCE check failed"})
                    return
            token = provider.id_token(grant["nonce"], grant["user"])
            with provider.lock:
                provider.tokens_issued += 1
            self._json(
                200,
                {
                    "access_token": secrets.token_urlsafe(24),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": token,
                },
            )

    return Handler


@contextmanager
def running_provider(client_id: str = "docqa-ui", client_secret: str | None = None) -> Iterator[Provider]:
    """The provider on a free 127.0.0.1 port until the block ends (a daemon thread: it dies with the tests)."""
    provider = Provider(client_id=client_id, client_secret=client_secret or secrets.token_urlsafe(24))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    server.daemon_threads = True
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
