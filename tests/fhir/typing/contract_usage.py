"""Uses the models the way the API contract shows; mypy --strict and pyright must accept it."""

from __future__ import annotations

from decimal import Decimal

from pymedplum.fhir import (
    Bundle,
    BundleEntry,
    CodeableConcept,
    Coding,
    HumanName,
    Observation,
    ObservationComponent,
    Patient,
    Quantity,
    Reference,
)


def build() -> list[str]:
    patient = Patient(
        name=[HumanName(given=["John"], family="Doe")],
        gender="male",
        birth_date="1970-03",
        active=True,
    )
    observation = Observation(
        status="final",
        code=CodeableConcept(coding=[Coding(system="http://loinc.org", code="8867-4")]),
        subject=Reference(reference="Patient/123"),
        value_quantity=Quantity(value=Decimal("72.50"), unit="beats/min"),
        component=[ObservationComponent(code=CodeableConcept(text="x"), value_string="y")],
    )
    bundle = Bundle(type="collection", entry=[BundleEntry(resource=patient)])
    # create_resource_if_none_exist's example: nested elements as FHIR JSON dicts.
    conditional = Patient(
        identifier=[{"system": "http://hospital.org/mrn", "value": "12345"}],
        name=[{"family": "Smith", "given": ["John"]}],
    )
    names_given: list[str] = [n.family or "" for n in conditional.name or []]
    parsed = Patient.model_validate_json(patient.model_dump_json(by_alias=True, exclude_none=True))
    names: list[str] = [n.family or "" for n in parsed.name or []]
    account: str | None = parsed.medplum_account
    accounts: list[str] = parsed.medplum_accounts
    if account is not None:
        names.append(account)
    names.extend(accounts)
    names.append(observation.status)
    names.append(bundle.type)
    names.extend(names_given)
    return names


def build_more() -> int:
    """Bundle entries, contained resources, choices, primitive extensions, Medplum types."""
    from pymedplum.fhir import (
        AccessPolicy,
        Element,
        MolecularSequenceQualityRoc,
        Project,
        ProjectMembership,
    )

    patient = Patient(
        birth_date="1970",
        birth_date_ext={"extension": [{"url": "http://x", "valueString": "y"}]},
        deceased_boolean=False,
        contained=[
            {"resourceType": "Organization", "id": "o"},
            Observation(status="final", code={}),
        ],
    )
    name = HumanName(given=["A", "B"], given_ext=[None, Element(id="x")])
    bundle = Bundle(
        type="transaction",
        entry=[
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            BundleEntry(resource=patient, request={"method": "PUT", "url": "Patient/p"}),
        ],
    )
    membership = ProjectMembership(
        project={"reference": "Project/1"},
        user=Reference(reference="User/1"),
        profile={"reference": "Patient/1"},
        access=[{"policy": {"reference": "AccessPolicy/1"}}],
    )
    policy = AccessPolicy(resource=[{"resourceType": "Patient", "readonly": True}])
    project = Project(name="p", features=["bots"])
    # A repeating decimal takes floats and ints too, as a single one does.
    roc = MolecularSequenceQualityRoc(precision=[0.5, 1, Decimal("0.25")])
    quantity = Quantity(value=1.5)
    return len([patient, name, bundle, membership, policy, project, roc, quantity])
