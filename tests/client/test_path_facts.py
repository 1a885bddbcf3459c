"""describe_fhir_path and derive_action: the FHIR facts of a RequestEvent, from the URL alone.

The end-to-end twins (through a client, both flavours) are in ``_async/test_hooks.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymedplum.hooks import derive_action, describe_fhir_path

PREFIX = "/fhir/R4/"

# (method, path after the FHIR base, resource_type, resource_id, operation, template after the
# base, action)
SHAPES = [
    # instance level
    ("GET", "Patient/p-1", "Patient", "p-1", None, "Patient/{id}", "read"),
    ("PUT", "Patient/p-1", "Patient", "p-1", None, "Patient/{id}", "update"),
    ("PATCH", "Patient/p-1", "Patient", "p-1", None, "Patient/{id}", "patch"),
    ("DELETE", "Patient/p-1", "Patient", "p-1", None, "Patient/{id}", "delete"),
    ("GET", "Patient/p-1/_history/3", "Patient", "p-1", None, "Patient/{id}/_history/{id}",
     "read"),
    ("GET", "Patient/p-1/_history", "Patient", "p-1", None, "Patient/{id}/_history", "read"),
    # type level
    ("GET", "Patient", "Patient", None, None, "Patient", "search"),
    ("POST", "Patient", "Patient", None, None, "Patient", "create"),
    ("POST", "Patient/_search", "Patient", None, None, "Patient/_search", "search"),
    ("GET", "Patient/_history", "Patient", None, None, "Patient/_history", "search"),
    # compartment search
    ("GET", "Patient/p-1/Observation", "Observation", None, None, "Patient/{id}/Observation",
     "search"),
    ("HEAD", "Patient/p-1/Observation", "Observation", None, None, "Patient/{id}/Observation",
     "search"),
    ("POST", "Patient/p-1/Observation/_search", "Observation", None, None,
     "Patient/{id}/Observation/_search", "search"),
    ("GET", "Patient/p-1/*", None, None, None, "Patient/{id}/*", "search"),
    ("POST", "Patient/p-1/*/_search", None, None, None, "Patient/{id}/*/_search", "search"),
    ("GET", "Encounter/Observation/Condition", "Condition", None, None,
     "Encounter/{id}/Condition", "search"),  # an id spelled like a type is still an id
    # a capitalised segment that is no resource type (a name?) is never kept in the template
    ("GET", "Patient/p-1/Smith", "Patient", "p-1", None, "Patient/{id}/{id}", "read"),
    ("GET", "Smith/p-1", None, None, None, "{id}/{id}", None),
    # operations
    ("POST", "Patient/p-1/$everything", "Patient", "p-1", "$everything",
     "Patient/{id}/$everything", "operation"),
    ("GET", "ValueSet/$expand", "ValueSet", None, "$expand", "ValueSet/$expand", "operation"),
    ("POST", "$graphql", None, None, "$graphql", "$graphql", "operation"),
    # batch / transaction
    ("POST", "", None, None, None, "", "batch_or_transaction"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "rest", "rtype", "rid", "operation", "template", "action"), SHAPES
)
def test_fhir_url_shapes(
    method: str,
    rest: str,
    rtype: str | None,
    rid: str | None,
    operation: str | None,
    template: str,
    action: str,
) -> None:
    facts = describe_fhir_path(PREFIX + rest, PREFIX)
    assert facts == (rtype, rid, operation, PREFIX + template)
    derived = derive_action(method, *facts, fhir_root=rest == "")
    assert derived == action


def test_compartment_with_every_type_is_a_search_by_its_template() -> None:
    template = "/fhir/R4/Patient/{id}/*"
    assert derive_action("GET", None, None, None, template, fhir_root=False) == "search"
    assert derive_action("POST", None, None, None, template + "/_search", fhir_root=False) == (
        "search"
    )
    # Two ids after a type is no FHIR interaction: no action is made up for it.
    assert (
        derive_action("GET", None, None, None, "/fhir/R4/Patient/{id}/{id}", fhir_root=False)
        is None
    )


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST"])
def test_writing_to_a_compartment_of_every_type_is_no_fhir_interaction(method: str) -> None:
    template = "/fhir/R4/Patient/{id}/*"
    assert derive_action(method, None, None, None, template, fhir_root=False) is None


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/admin/users/janedoe", "/admin/{id}/{id}"),
        ("/admin/projects/p1/members/m1", "/admin/projects/{id}/members/{id}"),
        ("/keyvalue/v1/jane-doe", "/keyvalue/v1/{id}"),
        ("/oauth2/token", "/oauth2/token"),
        ("/auth/mfa/status", "/auth/mfa/status"),
        ("/scim/v2/Users/janedoe", "/scim/v2/Users/{id}"),
        ("/.well-known/smart-configuration", "/.well-known/smart-configuration"),
        ("/fhir/R4", "/fhir/R4"),
        ("/fhir/R4/", "/fhir/R4/"),
        ("/fhir/R4/metadata", "/fhir/R4/metadata"),
        ("/fhir/R4/janedoe", "/fhir/R4/{id}"),
        ("/", "/"),
    ],
)
def test_other_paths_keep_only_route_words(path: str, template: str) -> None:
    assert describe_fhir_path(path, PREFIX) == (None, None, None, template)


def test_other_paths_keep_the_segments_shared_with_the_fhir_base() -> None:
    assert describe_fhir_path("/medplum/admin/users/janedoe", "/medplum/fhir/R4/") == (
        None,
        None,
        None,
        "/medplum/admin/{id}/{id}",
    )
    # an empty FHIR path puts the FHIR base at the API root
    assert describe_fhir_path("/admin/users/janedoe", "/")[3] == "/admin/{id}/{id}"


fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
types = st.sampled_from(["Patient", "Encounter", "Observation", "RelatedPerson"])


@given(types, fhir_ids, st.sampled_from(["Observation", "Condition", "*"]))
def test_compartment_id_never_reaches_the_template_or_resource_id(
    compartment: str, resource_id: str, searched: str
) -> None:
    rtype, rid, operation, template = describe_fhir_path(
        f"{PREFIX}{compartment}/{resource_id}/{searched}", PREFIX
    )
    assert (rtype, rid, operation) == (None if searched == "*" else searched, None, None)
    assert template == f"{PREFIX}{compartment}/{{id}}/{searched}"
    assert derive_action("GET", rtype, rid, operation, template, fhir_root=False) == "search"


@given(types, fhir_ids, st.one_of(st.none(), fhir_ids))
def test_read_and_vread_name_the_id_and_template_it_away(
    resource_type: str, resource_id: str, version: str | None
) -> None:
    suffix = "" if version is None else f"/_history/{version}"
    facts = describe_fhir_path(f"{PREFIX}{resource_type}/{resource_id}{suffix}", PREFIX)
    assert facts[:3] == (resource_type, resource_id, None)
    assert facts[3] == f"{PREFIX}{resource_type}/{{id}}" + ("/_history/{id}" if version else "")
    assert derive_action("GET", *facts, fhir_root=False) == "read"


@given(st.lists(st.from_regex(r"[A-Za-z][A-Za-z-]{0,20}", fullmatch=True), max_size=5))
def test_other_paths_template_only_route_words(segments: list[str]) -> None:
    from pymedplum.hooks import _ROUTE_WORDS

    template = describe_fhir_path("/admin/" + "/".join(segments), PREFIX)[3]
    assert all(s in _ROUTE_WORDS or s in ("", "{id}") for s in template.split("/"))
