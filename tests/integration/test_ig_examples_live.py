"""Implementation Guide data through a Medplum server and both clients, typed and untyped.

tests/fhir/test_ig_packages.py round-trips every resource of six R4 IG packages offline; here
one resource of every resourceType they hold (examples first, then conformance resources) is
created as a dict and as a model, read back plain and as its model, written back through the
model (read-modify-write keeps every element the server sent), and found by a typed search
(``_id``; ``url`` too for a canonical resource). Every resource of these packages went through
the same steps by hand (docs/models.md); one per type keeps the suite quick.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from sdk_clients import Api

import pymedplum.fhir as fhir
from codegen.fhir_packages import ensure
from codegen.roundtrip import KNOWN_INVALID, as_text_numbers, example_documents, unknown_elements
from pymedplum.fhir import Bundle
from pymedplum.fhir._base import FHIRModel

pytestmark = pytest.mark.anyio

# The IGs with examples first: their patient data is what a client reads and writes most.
PACKAGES = [
    "hl7.fhir.uv.ips@2.0.0",
    "hl7.fhir.us.mcode@4.0.0",
    "hl7.fhir.uv.genomics-reporting@3.0.0",
    "hl7.fhir.uv.sdc@4.0.0-ballot",
    "hl7.fhir.uv.extensions.r4@5.3.0-ballot-tc1",
    "hl7.terminology.r4@7.0.1",
]


@functools.cache  # read once for both clients
def _one_resource_per_type() -> tuple[tuple[str, str], ...]:
    chosen: dict[str, tuple[str, dict[str, Any]]] = {}
    for spec in PACKAGES:
        invalid = KNOWN_INVALID.get(spec, {})
        # Examples first, then resources under 100 kB (a 500 kB List only slows the suite).
        documents = sorted(
            example_documents(ensure(spec)),
            key=lambda doc: ("/example/" not in doc[0], len(doc[1]) > 100_000),
        )
        for name, raw in documents:
            if name in invalid:
                continue
            data = json.loads(raw)
            chosen.setdefault(data["resourceType"], (f"{spec}:{name}", raw.decode()))
    return tuple(chosen[resource_type] for resource_type in sorted(chosen))


def _text(value: Any) -> Any:
    """JSON with every number kept as its text (1.50 != 1.5), without id and meta."""
    if isinstance(value, FHIRModel):
        value = as_text_numbers(value.model_dump_json(by_alias=True, exclude_none=True))
    else:
        value = as_text_numbers(json.dumps(value))
    return {k: v for k, v in value.items() if k not in ("id", "meta")}


async def test_ig_resources_created_read_written_and_searched_typed_and_untyped(
    api: Api,
) -> None:
    resources = _one_resource_per_type()
    assert len(resources) == 44  # every resourceType of the six packages
    failures: list[str] = []
    for name, raw in resources:
        data = json.loads(raw)
        resource_type = data["resourceType"]
        model = fhir.get_model(resource_type)
        data.pop("id", None)

        # Untyped create; the server keeps the resource as sent (it adds id and meta).
        created = await api.call("create_resource", data)
        assert _text(created) == _text(data), name
        rid = created["id"]
        plain = await api.call("read_resource", resource_type, rid)
        typed = await api.call("read_resource", resource_type, rid, as_fhir=model)
        assert type(typed) is model, name
        assert unknown_elements(typed, resource_type) == [], name  # nothing the model lacks
        if as_text_numbers(typed.model_dump_json(by_alias=True, exclude_none=True)) != (
            as_text_numbers(json.dumps(plain))
        ):
            failures.append(f"{name}: the typed read is not the server's resource")
            continue

        # Read-modify-write through the model: the server stores exactly what it was sent.
        typed.language = "en"
        updated = await api.call("update_resource", typed, as_fhir=model)
        assert updated.meta.version_id != typed.meta.version_id
        if _text(updated) != _text({**plain, "language": "en"}):
            failures.append(f"{name}: the update through the model changed the resource")

        # Typed create: the model goes out as the JSON it was read from.
        sent = model.model_validate(data)
        made = await api.call("create_resource", sent, as_fhir=model)
        assert type(made) is model and made.id not in (None, rid), name
        if _text(made) != _text(data):
            failures.append(f"{name}: the typed create changed the resource")

        if resource_type == "Binary":
            continue  # not searchable on Medplum: Binary content lives outside the FHIR store
        query: dict[str, str] = {"_id": rid}
        if isinstance(data.get("url"), str) and resource_type != "Bundle":
            query["url"] = data["url"]  # a canonical resource, found by its canonical URL too
        found = await api.call(
            "search_resources", resource_type, query, return_bundle=True, as_fhir=model
        )
        assert [r.id for r in found] == [rid], name
        assert [type(r) for r in found] == [model], name
        searchset = Bundle.model_validate(found.raw)
        assert searchset.entry is not None
        assert _text(searchset.entry[0].resource) == _text(updated), name
    assert failures == []
