"""Must NOT type-check: misspelt keywords (constructor, dump, parse), a code outside the set."""

from __future__ import annotations

from pymedplum.fhir import Patient

misspelt = Patient(nmae=[])
wrong_code = Patient(gender="F")
# The models' own model_dump_json / model_validate_json keep pydantic's typed keywords.
misspelt_dump = Patient().model_dump_json(indnet=2)
misspelt_parse = Patient.model_validate_json("{}", strcit=True)
