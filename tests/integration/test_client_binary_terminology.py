"""Binary upload/download, C-CDA export and the terminology operations of both clients against
the live local server.

The C-CDA document and the terminology operations are harness stand-ins (tests/server/README.md,
"What the harness adds or fakes"): a minimal CDA R2 document, and $expand / $lookup /
$translate over the HL7 definitions, resources created here, and a seeded LOINC / SNOMED CT subset.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sdk_clients import Api, unique

from pymedplum import BadRequestError, NotFoundError

pytestmark = pytest.mark.anyio

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CDA = "{urn:hl7-org:v3}"


# --- Binary ---------------------------------------------------------------------------------------


async def test_a_20_mb_binary_round_trips_without_extra_copies(api: Api) -> None:
    # Over a real socket: the upload is handed to the HTTP layer in 256 KB slices (it copied
    # the whole body: 1.77x / 1.85x peak), the download read into one buffer (httpx's chunk
    # list + join: 2x). Peaks are of memory allocated during the call, over the body's size.
    size = 20 * 1024 * 1024
    payload = os.urandom(size)
    await api.call("search_one", "Patient")  # token and connection first

    async def peak_of(method: str, *args: Any) -> tuple[float, Any]:
        gc.collect()
        tracemalloc.start()
        try:
            result = await api.call(method, *args)
            return tracemalloc.get_traced_memory()[1] / size, result
        finally:
            tracemalloc.stop()

    upload_peak, binary = await peak_of("upload_binary", payload, "application/octet-stream")
    download_peak, content = await peak_of("download_binary", binary["id"])
    assert content == payload
    assert upload_peak < 0.2, f"upload peak {upload_peak:.2f}x"
    assert download_peak < 1.3, f"download peak {download_peak:.2f}x"


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/pdf", b"%PDF-1.7\n\x00\x01\x02\xff\xfe binary \r\n" + os.urandom(4096)),
        ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
        ("text/csv", 'name,note\nünï,"a,b"\r\n'.encode()),
    ],
)
async def test_binary_round_trips_bytes_and_content_type(
    api: Api, content_type: str, content: bytes
) -> None:
    binary = await api.call("upload_binary", content, content_type)
    assert binary["resourceType"] == "Binary" and binary["id"]
    assert binary["contentType"] == content_type
    assert api.server.last_headers("/fhir/R4/Binary")["content-type"] == content_type
    downloaded = await api.call("download_binary", binary["id"])
    assert isinstance(downloaded, bytes) and downloaded == content
    stored = await api.call("read_resource", "Binary", binary["id"])
    assert stored["contentType"] == content_type
    assert [e.action for e in api.fhir_events()] == ["create", "read", "read"]


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/json", b'{"note": "a JSON file, not a resource"}'),
        ("application/fhir+json", b'{"resourceType": "Patient", "id": "not-a-binary"}'),
        ("text/plain; charset=utf-8", "plain text \u00fc".encode()),
    ],
)
async def test_binary_content_of_any_type_is_stored_as_sent(
    api: Api, content_type: str, content: bytes
) -> None:
    # Medplum's binary router (packages/server/src/fhir/binary.ts, handleBinaryWriteRequest)
    # runs before the body parsers: JSON is content like any other (only application/fhir+json
    # carrying a Binary resource is written as that resource), and the Content-Type header is
    # stored as sent, parameters included.
    binary = await api.call("upload_binary", content, content_type)
    assert binary["resourceType"] == "Binary" and binary["contentType"] == content_type
    assert await api.call("download_binary", binary["id"]) == content


async def test_download_of_unknown_binary_is_not_found(api: Api) -> None:
    with pytest.raises(NotFoundError):
        await api.call("download_binary", unique("no-binary-"))


# --- C-CDA ----------------------------------------------------------------------------------------


async def test_export_ccda_returns_the_xml_document(api: Api) -> None:
    # Non-ASCII: Medplum answers application/cda+xml without a charset; the text is UTF-8.
    family = unique("Cdá-Müller")
    patient = await api.call(
        "create_resource",
        {"resourceType": "Patient", "name": [{"family": family, "given": ["Ida"]}]},
    )
    await api.call(
        "create_resource",
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{patient['id']}"},
            "code": {"coding": [{"system": SNOMED, "code": "38341003"}]},
        },
    )
    document = await api.call("export_ccda", patient["id"])
    assert isinstance(document, str)
    root = ET.fromstring(document)
    assert root.tag == f"{CDA}ClinicalDocument"
    assert family in document and patient["id"] in document
    assert api.server.last_headers("/fhir/R4/Patient")["accept"].startswith("application/xml")
    assert api.fhir_events()[-1].action == "operation"
    with pytest.raises(NotFoundError):
        await api.call("export_ccda", unique("no-patient-"))


# --- terminology ----------------------------------------------------------------------------------


def codes(expansion: dict[str, Any]) -> list[str]:
    return [c["code"] for c in expansion.get("expansion", {}).get("contains", [])]


def parameter(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in result.get("parameter", []) if p.get("name") == name]


async def test_expand_valueset_by_url_filter_and_paging(api: Api) -> None:
    url = "http://hl7.org/fhir/ValueSet/observation-status"
    full = await api.call("expand_valueset", valueset_url=url)
    assert full["resourceType"] == "ValueSet"
    assert {"final", "preliminary", "amended"} <= set(codes(full))
    filtered = await api.call("expand_valueset", valueset_url=url, filter="prelim")
    assert codes(filtered) == ["preliminary"]
    page = await api.call("expand_valueset", valueset_url=url, offset=1, count=2)
    assert codes(page) == codes(full)[1:3]
    # expand.ts: expansion.total counts the rows found (count + 1 when more exist).
    assert full["expansion"]["total"] == len(codes(full)) and page["expansion"]["total"] == 3
    assert api.fhir_events()[-1].query_params == {
        "url": [url],
        "offset": ["1"],
        "count": ["2"],
    }


async def test_expand_valueset_without_count_returns_every_concept(api: Api) -> None:
    # expand.ts (expandOperator): only a filter without count defaults to 10 (typeahead);
    # otherwise every concept is returned, up to 1000, with the ValueSet's own elements.
    url = "http://hl7.org/fhir/ValueSet/resource-types"
    full = await api.call("expand_valueset", valueset_url=url)
    assert len(codes(full)) > 100 and full["expansion"]["total"] == len(codes(full))
    assert full["url"] == url and "compose" in full
    typeahead = await api.call("expand_valueset", valueset_url=url, filter="Med")
    assert 0 < len(codes(typeahead)) <= 10


async def test_expand_valueset_by_id_over_seeded_loinc(api: Api) -> None:
    valueset = await api.call(
        "create_resource",
        {
            "resourceType": "ValueSet",
            "url": f"http://example.org/ValueSet/{unique('vitals')}",
            "status": "active",
            "compose": {
                "include": [{"system": LOINC, "concept": [{"code": "8867-4"}, {"code": "8310-5"}]}]
            },
        },
    )
    expansion = await api.call("expand_valueset", valueset_id=valueset["id"])
    contains = expansion["expansion"]["contains"]
    # (validateCodings: a listed concept without display gets the code system's.)
    assert [(c["system"], c["code"]) for c in contains] == [(LOINC, "8867-4"), (LOINC, "8310-5")]
    # Medplum has no ValueSet/{id}/$expand route: the ValueSet is read, then POSTed inline.
    read, expand = api.fhir_events()[-2:]
    assert (read.method, read.path) == ("GET", f"/fhir/R4/ValueSet/{valueset['id']}")
    assert (expand.method, expand.path) == ("POST", "/fhir/R4/ValueSet/$expand")
    with pytest.raises(ValueError, match="valueset_url or valueset_id"):
        await api.call("expand_valueset")


async def test_lookup_concept_in_seeded_code_systems(api: Api) -> None:
    result = await api.call("lookup_concept", code="8867-4", system=LOINC)
    assert result["resourceType"] == "Parameters"
    assert [p["valueString"] for p in parameter(result, "display")] == ["Heart rate"]
    snomed = await api.call(
        "lookup_concept", code="38341003", system=SNOMED, property=["parent", "designation"]
    )
    assert parameter(snomed, "display")[0]["valueString"].startswith("Hypertensive disorder")
    assert api.fhir_events()[-1].query_params == {
        "code": ["38341003"],
        "system": [SNOMED],
        "property": ["parent", "designation"],
    }
    by_coding = await api.call(
        "lookup_concept", code="8310-5", coding={"system": LOINC, "code": "8310-5"}
    )
    assert parameter(by_coding, "display")[0]["valueString"] == "Body temperature"
    # codesystemlookup.ts (lookupCoding): an unknown code answers 404, not 400.
    with pytest.raises(NotFoundError):
        await api.call("lookup_concept", code="0000-0", system=LOINC)


async def test_terminology_resources_unknown_by_url_are_400(api: Api) -> None:
    # findTerminologyResource (fhir/operations/utils/terminology.ts:58-60 at v5.0.10): a ValueSet,
    # CodeSystem or ConceptMap unknown by canonical URL is 400 "<type> <url> not found" (a
    # BadRequestError), not 404; checked against a real Medplum 5.0.10 server.
    unknown = f"http://example.org/{unique('nope')}"
    calls: list[tuple[str, dict[str, str]]] = [
        ("expand_valueset", {"valueset_url": unknown}),
        ("lookup_concept", {"code": "x", "system": unknown}),
        ("translate_concept", {"code": "x", "system": LOINC, "conceptmap_url": unknown}),
    ]
    for (method, kwargs), kind in zip(calls, ["ValueSet", "CodeSystem", "ConceptMap"], strict=True):
        with pytest.raises(BadRequestError) as caught:
            await api.call(method, **kwargs)
        assert not isinstance(caught.value, NotFoundError)
        assert caught.value.status_code == 400
        texts = [i.get("details", {}).get("text") for i in caught.value.outcome["issue"]]
        assert texts == [f"{kind} {unknown} not found"]


async def test_lookup_concept_by_code_system_id(api: Api) -> None:
    system = f"http://example.org/CodeSystem/{unique('local')}"
    code_system = await api.call(
        "create_resource",
        {
            "resourceType": "CodeSystem",
            "url": system,
            "status": "active",
            "content": "complete",
            "concept": [{"code": "A", "display": "Alpha"}, {"code": "B", "display": "Beta"}],
        },
    )
    result = await api.call("lookup_concept", code="B", codesystem_id=code_system["id"])
    assert parameter(result, "display")[0]["valueString"] == "Beta"
    assert api.fhir_events()[-1].path == f"/fhir/R4/CodeSystem/{code_system['id']}/$lookup"


async def test_translate_concept_by_url_and_id(api: Api) -> None:
    source, target = "http://hl7.org/fhir/observation-status", "http://example.org/local-codes"
    map_url = f"http://example.org/ConceptMap/{unique('status')}"
    concept_map = await api.call(
        "create_resource",
        {
            "resourceType": "ConceptMap",
            "url": map_url,
            "status": "active",
            "group": [
                {
                    "source": source,
                    "target": target,
                    "element": [
                        {
                            "code": "final",
                            "target": [{"code": "F", "display": "Final", "equivalence": "equal"}],
                        }
                    ],
                }
            ],
        },
    )
    by_url = await api.call(
        "translate_concept",
        code="final",
        system=source,
        conceptmap_url=map_url,
        target_system=target,
    )
    assert parameter(by_url, "result")[0]["valueBoolean"] is True
    (match,) = parameter(by_url, "match")
    concept = next(p for p in match["part"] if p["name"] == "concept")["valueCoding"]
    assert (concept["code"], concept.get("display"), concept.get("system")) == (
        "F",
        "Final",
        target,
    )

    by_id = await api.call(
        "translate_concept",
        coding={"system": source, "code": "final"},
        conceptmap_id=concept_map["id"],
    )
    assert parameter(by_id, "result")[0]["valueBoolean"] is True
    assert api.fhir_events()[-1].path == f"/fhir/R4/ConceptMap/{concept_map['id']}/$translate"
    unmapped = await api.call(
        "translate_concept", code="amended", system=source, conceptmap_id=concept_map["id"]
    )
    assert parameter(unmapped, "result")[0]["valueBoolean"] is False


async def test_translate_concept_as_medplum_reads_it(api: Api) -> None:
    # conceptmaptranslate.ts (translateConcept): result is true only for a match that is not
    # negative (unmatched, disjoint); `reverse` is not evaluated by Medplum 5.0.10 (it is sent).
    source, target = "http://hl7.org/fhir/observation-status", "http://example.org/local-codes"
    concept_map = await api.call(
        "create_resource",
        {
            "resourceType": "ConceptMap",
            "url": f"http://example.org/ConceptMap/{unique('neg')}",
            "status": "active",
            "group": [
                {
                    "source": source,
                    "target": target,
                    "element": [
                        {"code": "final", "target": [{"code": "F", "equivalence": "equal"}]},
                        {"code": "amended", "target": [{"equivalence": "unmatched"}]},
                    ],
                }
            ],
        },
    )
    map_id = concept_map["id"]
    negative = await api.call(
        "translate_concept", code="amended", system=source, conceptmap_id=map_id
    )
    assert parameter(negative, "result")[0]["valueBoolean"] is False
    (match,) = parameter(negative, "match")
    assert next(p for p in match["part"] if p["name"] == "equivalence")["valueCode"] == "unmatched"
    reverse = await api.call(
        "translate_concept", code="F", system=target, conceptmap_id=map_id, reverse=True
    )
    assert api.fhir_events()[-1].query_params["reverse"] == ["true"]
    assert parameter(reverse, "result")[0]["valueBoolean"] is False
    assert parameter(reverse, "match") == []
