"""pymedplum's code generator (not shipped in the wheel).

Reads the pinned inputs in ``specs/`` and writes the generated parts of
``src/pymedplum``: FHIR models, non-FHIR payload models and the async endpoint
methods. ``python -m codegen --help`` lists the commands.
"""
