"""The async runtime: the single source of the client (src/pymedplum/_sync/ is derived from it)."""
