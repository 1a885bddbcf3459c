"""The installed package exposes its version and ships its type marker."""

from importlib import metadata, resources

import pymedplum


def test_version_matches_distribution_metadata() -> None:
    assert pymedplum.__version__ == metadata.version("pymedplum")


def test_py_typed_marker_is_shipped() -> None:
    assert resources.files("pymedplum").joinpath("py.typed").is_file()
