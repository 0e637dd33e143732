"""The `docqa` command: one sub-command per job. Domain errors become messages and exit codes here."""
