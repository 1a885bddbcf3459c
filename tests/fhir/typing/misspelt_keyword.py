"""Must NOT type-check: misspelt keywords (constructor, dump, parse), a code outside the set,
misspelt names in the lazily loaded packages (each has a module ``__getattr__`` at run time)."""

from __future__ import annotations

import pymedplum
import pymedplum.fhir
from pymedplum import MedplumClent
from pymedplum.fhir import Obsrvation, Patient
from pymedplum.search_params import PatientSearchParms

misspelt = Patient(nmae=[])
wrong_code = Patient(gender="F")
# The models' own model_dump_json / model_validate_json keep pydantic's typed keywords.
misspelt_dump = Patient().model_dump_json(indnet=2)
misspelt_parse = Patient.model_validate_json("{}", strcit=True)
misspelt_names = (Obsrvation, MedplumClent, PatientSearchParms)
misspelt_model = pymedplum.fhir.HumanNme
misspelt_helper = pymedplum.to_fhir_jsn
