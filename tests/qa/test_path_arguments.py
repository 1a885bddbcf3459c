"""A required path argument given as None must raise, not drop its path segment.

Dropping the segment turns ``delete_resource("Patient", None)`` into ``DELETE Patient`` (a
conditional delete of every Patient) and ``read_resource("Patient", None)`` into a search.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, tuple[Any, ...], str]] = [
    ("read_resource", ("Patient", None), "resource_id"),
    ("read_resource", (None, "1"), "resource_type"),
    ("vread_resource", ("Patient", "1", None), "version_id"),
    ("vread_resource", ("Patient", None, "1"), "resource_id"),
    ("delete_resource", ("Patient", None), "resource_id"),
    ("delete_resource", (None, "1"), "resource_type"),
    ("patch_resource", ("Patient", None, []), "resource_id"),
    ("search_resources", (None,), "resource_type"),
    ("search_one", (None,), "resource_type"),
    ("download_binary", (None,), "binary_id"),
    ("export_ccda", (None,), "patient_id"),
]


@pytest.mark.parametrize(
    ("method", "args", "argument"), CALLS, ids=[c[0] + "-" + c[2] for c in CALLS]
)
async def test_none_path_argument_raises_and_sends_nothing(
    qa: QA, method: str, args: tuple[Any, ...], argument: str
) -> None:
    client = qa.client()
    with pytest.raises((TypeError, ValueError), match=argument):
        await qa.call(client, method, *args)
    assert qa.requests == []


async def test_optional_instance_id_still_drops_its_segment(qa: QA) -> None:
    client = qa.client()
    await qa.call(client, "lookup_concept", "c", system="http://example.org/cs")
    assert qa.requests[-1].url.path == "/fhir/R4/CodeSystem/$lookup"
    await qa.call(client, "lookup_concept", "c", codesystem_id="cs1")
    assert qa.requests[-1].url.path == "/fhir/R4/CodeSystem/cs1/$lookup"


def test_fill_path_drops_only_optional_placeholders() -> None:
    from pymedplum._request_builders.paths import fill_path

    args = {"id": "valueset_id"}
    assert fill_path("ValueSet/{id}/$expand", {"id": None}, args, ("id",)) == "ValueSet/$expand"
    with pytest.raises(TypeError, match="valueset_id is required"):
        fill_path("ValueSet/{id}/$expand", {"id": None}, args)


REFERENCE_CALLS: list[tuple[str, tuple[Any, ...], str, str]] = [
    ("read_resource", ("Patient", "Patient/p-1"), "resource_id", "Patient/p-1"),
    ("delete_resource", ("Observation", "Observation/o.2"), "resource_id", "Observation/o.2"),
    ("download_binary", ("Binary/b1",), "binary_id", "Binary/b1"),
    ("export_ccda", ("Patient/p-1",), "patient_id", "Patient/p-1"),
]


@pytest.mark.parametrize(
    ("method", "args", "argument", "reference"),
    REFERENCE_CALLS,
    ids=[c[0] for c in REFERENCE_CALLS],
)
async def test_a_reference_where_an_id_goes_says_to_pass_the_id(
    qa: QA, method: str, args: tuple[Any, ...], argument: str, reference: str
) -> None:
    # read_resource("Patient", obs.subject.reference) is a usual first mistake; the message
    # gave the id rule only, not that the value is a reference. It says so without repeating
    # the value (an id in a log line can be PHI).
    with pytest.raises(ValueError) as info:
        await qa.call(qa.client(), method, *args)
    message = str(info.value)
    assert message.startswith(f"{argument} must be ")
    index = reference.index("/")
    assert message.endswith(
        f"'/' at index {index} not allowed: pass the id alone, not a 'Type/id' reference"
    )
    assert reference not in message
    assert reference[index + 1 :] not in message
    assert qa.requests == []


async def test_a_value_without_a_slash_gets_no_reference_hint(qa: QA) -> None:
    for value in ("x y", "..", "a" * 65, "mrn|123"):
        with pytest.raises(ValueError) as info:
            await qa.call(qa.client(), "read_resource", "Patient", value)
        assert "reference" not in str(info.value)


async def test_a_url_where_an_id_goes_says_which_segment_is_the_binary_id(qa: QA) -> None:
    # A real Medplum 5.0.10's $export manifest gives each output as a signed storage URL
    # (base/storage/<Binary id>/<version>?Expires=...&Signature=...), not Binary/<id>: passed
    # to download_binary it got "':' at index 4 not allowed". It says what to pass instead,
    # without repeating the URL (its signature is a credential).
    url = "https://medplum.test/storage/b-1/v-2?Expires=1795752932&Signature=secret"
    with pytest.raises(ValueError) as info:
        await qa.call(qa.client(), "download_binary", url)
    message = str(info.value)
    assert message.startswith("binary_id must be ")
    assert message.endswith(
        f"got {len(url)} characters, a URL: pass the id it names (in Medplum's "
        "storage/<id>/<version> URLs, such as a $export manifest's output urls, the segment "
        "after storage/ is the Binary id)"
    )
    assert "secret" not in message and "b-1" not in message
    assert qa.requests == []


@pytest.mark.parametrize("scheme", ["HTTPS://", "Http://"])
async def test_a_url_in_capitals_is_told_as_a_url_too(qa: QA, scheme: str) -> None:
    # URL schemes are case-insensitive (RFC 3986): a pasted "HTTPS://..." is the same mistake.
    url = scheme + "medplum.test/storage/b-1/v-2?Signature=secret"
    with pytest.raises(ValueError) as info:
        await qa.call(qa.client(), "read_resource", "Binary", url)
    assert f"got {len(url)} characters, a URL: pass the id it names" in str(info.value)
    assert "secret" not in str(info.value) and qa.requests == []
