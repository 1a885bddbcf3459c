"""Real-world R4 data beyond the core examples: HL7 Implementation Guides from the npm registry.

Every resource of each package (its conformance resources in ``package/`` and its examples in
``package/example/``) is read with the model of its ``resourceType`` and must satisfy the
round-trip contract of tests/fhir/test_examples.py, and ``pymedplum.to_fhir_json(model)`` must
equal the input as a dict. The packages are fetched by the project's own step
(``codegen.fhir_packages.ensure``: ``npm pack``, sha512 pinned in codegen/fhir_packages.json) into
``.cache/fhir-packages/``. The few resources that are not valid R4 must be rejected with a
``ValidationError`` that names the element. Results and what they showed: docs/models.md.
"""

from __future__ import annotations

import pytest

from codegen.fhir_packages import ensure
from codegen.roundtrip import KNOWN_INVALID, roundtrip_package

pytestmark = pytest.mark.examples

# name@version -> how many resources are round-tripped (a package that lost or gained files,
# or an example_documents that stopped finding them, shows here).
PACKAGES = {
    "hl7.fhir.uv.ips@2.0.0": 118,
    "hl7.fhir.us.mcode@4.0.0": 350,
    "hl7.fhir.uv.sdc@4.0.0-ballot": 183,
    "hl7.fhir.uv.genomics-reporting@3.0.0": 297,
    "hl7.fhir.uv.extensions.r4@5.3.0-ballot-tc1": 855,
    "hl7.terminology.r4@7.0.1": 4080,
}

# The 16 Bundles of the terminology package (25 MB) only gather its CodeSystems and ValueSets,
# which are checked one by one; leaving them out halves the test's time.
SKIP = {"hl7.terminology.r4@7.0.1": ("package/Bundle-",)}

# The element each invalid resource lacks, as pydantic's error names it.
INVALID_AT = {
    "package/StructureDefinition-event-recorded.json": "text.div\n  Field required",
    "package/NamingSystem-MeSH.json": "uniqueId.3.type\n  Field required",
    "package/NamingSystem-v3-loinc.json": "uniqueId.2.type\n  Field required",
}


@pytest.mark.parametrize("spec", sorted(PACKAGES))
def test_ig_package_round_trips(spec: str) -> None:
    report = roundtrip_package(
        "pymedplum.fhir", ensure(spec), as_dict=True, skip=SKIP.get(spec, ())
    )
    known = KNOWN_INVALID.get(spec, {})
    assert {name: why for name, why in report.failures.items() if name not in known} == {}
    assert set(report.failures) == set(known)
    for name in known:
        assert report.failures[name].startswith("ValidationError"), report.failures[name]
        assert INVALID_AT[name] in report.failures[name]
    assert report.passed + len(report.failures) == PACKAGES[spec]
