"""Sign-in and permission failures; messages are shown to the person signing in or acting."""

from __future__ import annotations

from rag.errors import DocqaError


class SignInError(DocqaError):
    """Wrong name or password (deliberately not saying which)."""


class AccountLockedError(SignInError):
    """Too many wrong passwords in a row: the account refuses every sign-in for a while."""

    def __init__(self, name: str, seconds: float) -> None:
        minutes = max(1, round(seconds / 60))
        super().__init__(
            f"account '{name}' is locked after too many wrong passwords; try again in about {minutes} minute(s)"
            " or ask an admin"
        )
        self.name = name
        self.seconds = seconds


class PermissionDeniedError(DocqaError):
    """The signed-in user's role or collections do not allow the action."""


class AddressLockedError(SignInError):
    """Too many failed sign-ins from one client address, whatever the accounts: it is refused for a while."""

    def __init__(self, address: str, seconds: float) -> None:
        minutes, whole = max(1, round(seconds / 60)), max(1, round(seconds))
        wait = f"about {minutes} minute(s)" if seconds >= 90 else f"{whole} seconds"
        super().__init__(f"too many failed sign-ins from your address ({address}); try again in {wait}")
        self.address = address
        self.seconds = seconds
