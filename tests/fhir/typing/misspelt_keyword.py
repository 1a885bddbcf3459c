"""Must NOT type-check: a misspelt constructor keyword and a code outside the value set."""

from __future__ import annotations

from pymedplum.fhir import Patient

misspelt = Patient(nmae=[])
wrong_code = Patient(gender="F")
