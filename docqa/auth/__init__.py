"""Staff sign-in, roles and the audit trail: who may use the staff UI, what each may do, and a record of it.

``users`` holds local accounts (argon2 password hashes, lockout after repeated failures), ``audit`` the
append-only event log, ``access`` the roles and the checked actions the UI calls, ``oidc`` single sign-on
(Streamlit's ``st.login`` configuration, and an ID token's groups as a role). Both stores live in the
state store (``docqa.state``), SQLite or PostgreSQL.
"""
