"""Which listening addresses only this machine can reach: the UI may run without sign-in on those alone."""

from __future__ import annotations

import ipaddress


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 or 'localhost'. An empty address (every interface) or a host name is not."""
    text = (address or "").strip()
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False
