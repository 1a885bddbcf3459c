"""pymedplum: the typed Python SDK for Medplum.

``from pymedplum import MedplumClient`` for the sync client,
``from pymedplum import AsyncMedplumClient`` for the async one, and
``from pymedplum.fhir import Patient`` for the FHIR R4 models.
"""

from pymedplum._version import __version__

__all__ = ["__version__"]
