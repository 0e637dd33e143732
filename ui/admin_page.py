"""The admin page (admins only; with no sign-in, the person at this machine): the accounts and the newest
audit events. Accounts are changed with `docqa users`, whose changes are audited as the CLI's user."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from ui.state import get_actions


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "never"


def main() -> None:
    actions = get_actions()
    st.title("Accounts and audit trail")
    st.subheader("Accounts")
    st.caption("Add, change and remove them with `docqa users` (see docs/auth.md).")
    accounts = actions.accounts()
    st.dataframe(
        [
            {
                "Name": u.name,
                "Role": u.role,
                "Collections": ", ".join(u.collections) if u.collections and u.role != "admin" else "all",
                "Last sign-in": _when(u.last_sign_in_at),
                "Locked": f"{round(u.locked_for() / 60)} min" if u.locked_for() else "",
            }
            for u in accounts
        ],
        hide_index=True,
        width="stretch",
        key="accounts_table",
    )
    st.subheader("Newest audit events")
    st.caption("All of them: `docqa audit export --out audit.jsonl`.")
    st.dataframe(
        [
            {
                "When (UTC)": e.at,
                "Who": e.actor,
                "Action": e.action,
                "Outcome": e.outcome,
                "Collection": e.collection or "",
                "Target": e.target or "",
            }
            for e in actions.audit_events()
        ],
        hide_index=True,
        width="stretch",
        key="audit_table",
    )


if __name__ == "__main__":  # st.navigation runs page files as __main__
    main()
