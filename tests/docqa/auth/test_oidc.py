"""Single sign-on without a browser: an ID token's groups mapped to a role and collections, the secrets file
`docqa ui` writes for ``st.login`` (private, readable TOML, the client secret only there and in the child's
settings), and `docqa ui`'s refusals of an incomplete OIDC setup."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from docqa.auth.errors import SignInError
from docqa.auth.oidc import streamlit_secrets, user_from_claims, write_streamlit_secrets
from docqa.cli.ui_cmds import check_sign_in, child_environment, streamlit_command
from rag.errors import ConfigError
from rag.settings import AuthSettings, Settings, load_settings

SECRET = "s3cret-client-value"
ROLES = {"staff": "reader", "docs-editors": "editor", "docqa-admins": "admin"}


def auth(**changes: object) -> AuthSettings:
    return AuthSettings(method="oidc", oidc_group_roles=ROLES, **changes)


def oidc_settings(tmp_path: Path, **auth_changes: object) -> Settings:
    values = {
        "method": "oidc",
        "oidc_issuer": "https://login.example.com/realms/staff",
        "oidc_client_id": "docqa-ui",
        "oidc_client_secret": SECRET,
        **auth_changes,
    }
    return Settings(data_dir=tmp_path / "data", auth=values)


class TestGroupsToRole:
    def test_the_highest_role_of_the_groups_wins(self) -> None:
        claims = {"sub": "1", "email": "ed@example.com", "groups": ["staff", "docs-editors", "unknown"]}
        user = user_from_claims(claims, auth())
        assert (user.name, user.role, user.collections) == ("ed@example.com", "editor", ())
        assert user_from_claims({**claims, "groups": ["docqa-admins", "staff"]}, auth()).role == "admin"
        assert user_from_claims({**claims, "groups": ["staff"]}, auth()).role == "reader"

    def test_no_group_with_a_role_is_refused_unless_there_is_a_default(self) -> None:
        claims = {"sub": "1", "email": "cy@example.com", "groups": ["contractors"]}
        with pytest.raises(SignInError, match=r"no group of theirs \(contractors\) has a docqa role"):
            user_from_claims(claims, auth())
        with pytest.raises(SignInError, match="none in the 'groups' claim"):
            user_from_claims({"sub": "1", "email": "cy@example.com"}, auth())
        assert user_from_claims(claims, auth(oidc_default_role="reader")).role == "reader"

    def test_collections_are_the_union_of_the_groups_grants(self) -> None:
        grants = {"staff": ["support"], "legal-team": ["legal", "support"], "all-docs": ["*"]}
        settings = auth(oidc_group_collections=grants)
        claims = {"sub": "1", "email": "rita@example.com", "groups": ["staff", "legal-team"]}
        user = user_from_claims(claims, settings)
        assert user.collections == ("support", "legal") and user.can_read("legal") and not user.can_read("hr")
        assert user_from_claims({**claims, "groups": ["staff", "all-docs"]}, settings).collections == ()
        with pytest.raises(SignInError, match="has no collection"):
            user_from_claims({**claims, "groups": ["docs-editors"]}, settings)
        admin = user_from_claims({**claims, "groups": ["docqa-admins"]}, settings)
        assert admin.collections == () and admin.can_edit("hr"), "admins have every collection"

    def test_claim_names_are_settings_and_dots_reach_into_objects(self) -> None:
        settings = auth(oidc_name_claim="preferred_username", oidc_groups_claim="realm_access.roles")
        claims = {"sub": "1", "preferred_username": "rita", "realm_access": {"roles": ["staff"]}}
        assert (user_from_claims(claims, settings).name, user_from_claims(claims, settings).role) == ("rita", "reader")
        one_group = {"sub": "abc", "groups": "docs-editors"}  # one group, sent as a string
        assert user_from_claims(one_group, auth()).name == "abc", "no email claim: the subject names the user"
        assert user_from_claims(one_group, auth()).role == "editor"

    def test_the_mapping_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DOCQA_AUTH_METHOD", "oidc")
        monkeypatch.setenv("DOCQA_AUTH_OIDC_GROUP_ROLES", '{"staff": "reader", "docqa-admins": "admin"}')
        monkeypatch.setenv("DOCQA_AUTH_OIDC_GROUP_COLLECTIONS", '{"staff": ["support"]}')
        settings = load_settings().auth
        assert settings.oidc_group_roles == {"staff": "reader", "docqa-admins": "admin"}
        assert settings.oidc_group_collections == {"staff": ["support"]}
        monkeypatch.setenv("DOCQA_AUTH_OIDC_GROUP_ROLES", '{"staff": "owner"}')
        with pytest.raises(ValueError, match="reader"):
            load_settings()


class TestStreamlitSecrets:
    def test_the_file_is_private_toml_with_the_auth_section(self, tmp_path: Path) -> None:
        settings = oidc_settings(tmp_path, oidc_scope="openid email groups")
        path = write_streamlit_secrets(settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        section = tomllib.loads(path.read_text())["auth"]
        assert section["server_metadata_url"] == "https://login.example.com/realms/staff/.well-known/openid-configuration"
        assert (section["client_id"], section["client_secret"]) == ("docqa-ui", SECRET)
        assert section["redirect_uri"] == "http://localhost:{port}/oauth2callback"
        assert section["client_kwargs"] == {"scope": "openid email groups"}
        assert len(section["cookie_secret"]) >= 32
        again = tomllib.loads(write_streamlit_secrets(settings).read_text())["auth"]
        assert again["cookie_secret"] == section["cookie_secret"], "sign-ins survive a restart"
        given = oidc_settings(tmp_path, oidc_cookie_secret="shared-by-replicas-0123456789")
        assert tomllib.loads(streamlit_secrets(given))["auth"]["cookie_secret"] == "shared-by-replicas-0123456789"

    def test_odd_characters_survive_the_toml(self, tmp_path: Path) -> None:
        odd = 'quote " back\\slash \u00e9 \U0001f600 tab\t'
        section = tomllib.loads(streamlit_secrets(oidc_settings(tmp_path, oidc_client_secret=odd)))["auth"]
        assert section["client_secret"] == odd

    def test_the_secret_is_never_printed_but_reaches_the_ui_process(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = oidc_settings(tmp_path)
        assert SECRET not in settings.model_dump_json() and SECRET not in repr(settings)
        env = child_environment(settings, {})
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        child = load_settings().auth
        assert child.oidc_client_secret is not None and child.oidc_client_secret.get_secret_value() == SECRET
        command = streamlit_command(settings, secrets_file=tmp_path / "s.toml")
        assert command[command.index("--secrets.files") + 1] == str(tmp_path / "s.toml")
        assert SECRET not in " ".join(command)

    def test_missing_settings_are_named(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"auth.oidc_client_secret \(DOCQA_AUTH_OIDC_CLIENT_SECRET\)"):
            streamlit_secrets(oidc_settings(tmp_path, oidc_client_secret=None))


class TestDocqaUiRefusals:
    def test_an_incomplete_setup_is_refused_with_what_is_missing(self, tmp_path: Path) -> None:
        refusal = check_sign_in(oidc_settings(tmp_path, oidc_issuer=None, oidc_client_id=None), "127.0.0.1")
        assert refusal and "auth.oidc_issuer (DOCQA_AUTH_OIDC_ISSUER)" in refusal and "oidc_client_id" in refusal

    def test_the_network_needs_a_redirect_uri_that_ends_in_the_callback(self, tmp_path: Path) -> None:
        assert check_sign_in(oidc_settings(tmp_path), "127.0.0.1") is None
        refusal = check_sign_in(oidc_settings(tmp_path), "0.0.0.0")
        assert refusal and "DOCQA_AUTH_OIDC_REDIRECT_URI" in refusal
        public = oidc_settings(tmp_path, oidc_redirect_uri="https://docqa.example.com/oauth2callback")
        assert check_sign_in(public, "0.0.0.0") is None
        wrong = oidc_settings(tmp_path, oidc_redirect_uri="https://docqa.example.com/callback")
        assert "must end with /oauth2callback" in (check_sign_in(wrong, "0.0.0.0") or "")
