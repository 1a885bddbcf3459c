"""Must NOT type-check: misspelt keywords (constructor, dump, parse), a code outside the set,
misspelt names in the lazily loaded packages (each has a module ``__getattr__`` at run time),
assignments to an attribute the model does not declare (a typo, or the FHIR JSON name: at run
time both are accepted, the typo as an unknown element that is sent to the server)."""

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

patient = Patient()
patient.brith_date = "1970"
patient.birthDate = "1970"
del patient.brith_date
