"""The package version, kept in one place (pyproject.toml reads it from here)."""

# Above 0.6.0: PyPI's "pymedplum" has releases up to 0.6.0 (docs/migrating-from-0.6.md), and a
# lower version would lose to them in `pip install pymedplum` and `pip install -U`.
__version__ = "0.7.0"
