"""codegen.roundtrip's own behaviour, on small tarballs built here (no network)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from codegen.roundtrip import example_documents, roundtrip_one, roundtrip_package

PATIENT = b'{"resourceType":"Patient","id":"p"}'


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():  # written in this order
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_example_documents_reads_an_ig_s_example_folder_and_sorts_by_name(
    tmp_path: Path,
) -> None:
    # An Implementation Guide keeps its examples in package/example/; openapi/, other/ and
    # xml/ hold no FHIR JSON resources, package.json and .index.json are the manifest.
    tarball = _tarball(
        tmp_path / "ig.tgz",
        {
            "package/package.json": b"{}",
            "package/z.json": PATIENT,
            "package/example/b.json": PATIENT,
            "package/example/.index.json": b"{}",
            "package/a.json": PATIENT,
            "package/openapi/api.json": b"{}",
            "package/other/spec.internals": b"{}",
            "package/other/x.json": b"{}",
            "package/xml/a.xml": b"<Patient/>",
        },
    )
    names = [name for name, _ in example_documents(tarball)]
    assert names == ["package/a.json", "package/example/b.json", "package/z.json"]


def test_roundtrip_as_dict_also_compares_to_fhir_json(tmp_path: Path) -> None:
    raw = json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": 1.50},
            "_status": {"extension": [{"url": "http://example.org/e", "valueInteger": 2}]},
        }
    ).encode()
    assert roundtrip_one("pymedplum.fhir", raw, as_dict=True) is None
    tarball = _tarball(tmp_path / "p.tgz", {"package/a.json": raw, "package/Bundle-b.json": raw})
    report = roundtrip_package("pymedplum.fhir", tarball, as_dict=True, skip=("package/Bundle-",))
    assert (report.passed, report.failures) == (1, {})


def test_roundtrip_names_the_element_a_resource_lacks() -> None:
    raw = b'{"resourceType":"NamingSystem","name":"n","status":"active","kind":"codesystem",'
    raw += b'"date":"2024","uniqueId":[{"value":"1.2.3"}]}'
    problem = roundtrip_one("pymedplum.fhir", raw, as_dict=True)
    assert problem is not None
    assert problem.startswith("ValidationError")
    assert "uniqueId.0.type\n  Field required" in problem


def test_an_element_the_model_lacks_fails_the_round_trip_though_written_back() -> None:
    # Unknown elements are kept and written back as read, so the JSON comparison alone would
    # pass data holding an element that a model is missing; the check names where it is.
    raw = (
        b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        b'{"resourceType":"Patient","name":[{"given":["a"],"nickname":"b"}],'
        b'"contained":[{"resourceType":"Basic","code":{},"colour":"red"}]}}]}'
    )
    problem = roundtrip_one("pymedplum.fhir", raw)
    assert problem == (
        "unknown elements: Bundle.entry[0].resource.contained[0].colour, "
        "Bundle.entry[0].resource.name[0].nickname"
    )


def test_as_dict_expects_a_decimal_where_no_float_gives_the_text_back() -> None:
    # 66.899999999999991 (official R4 example Observation-body-height) reads as the float
    # 66.89999999999999, another number: to_fhir_json keeps the Decimal, and so must the check.
    raw = (
        b'{"resourceType":"Observation","status":"final","code":{"text":"h"},'
        b'"valueQuantity":{"value":66.899999999999991},"component":[{"code":{"text":"w"},'
        b'"valueQuantity":{"value":0.10}}]}'
    )
    assert roundtrip_one("pymedplum.fhir", raw, as_dict=True) is None
