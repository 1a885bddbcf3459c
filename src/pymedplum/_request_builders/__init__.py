"""Pure request-building steps of the endpoint methods (no I/O, shared by both clients).

Each function turns a method's arguments into one piece of a request: query parameters,
headers, a stamped body, a FHIR Parameters resource. A few read what the request's answer
means, as pure functions too (a searchset page's matches and next link, whether a job is done,
whether a patch failed its version test). The async methods and their unasync'd sync twins call
these, so the rules live in one place and are tested without a server.

One module per concern; callers import from the module that holds the name (this package
re-exports nothing, so that a client importing one concern does not load the others):

- ``paths``: resource types and ids as path segments, path templates, references, absolute URLs
- ``arguments``: scalar argument checks (non-empty strs, finite seconds, flags, ints, dates)
- ``as_fhir``: the ``as_fhir`` model class checked against the request
- ``headers``: the ``headers=`` argument and each header (a bearer token too) checked;
  headers looked up, set and merged case-blind
- ``conditional``: If-Match (update, patch, delete) and If-None-Exist (conditional create)
- ``patch``: JSON Patch operations checked
- ``bodies``: JSON bodies (resource arguments, required fields, the SUBSETTED refusal, $graphql)
- ``accounts``: account references and ``meta.accounts`` stamping (one resource or a bundle)
- ``content``: raw bytes bodies, MIME types, the low-level ``data=`` as a form body, and the
  chunked stream of a large body
- ``search``: search queries and ``params=`` as wire pairs, result parameters, ``POST _search``
- ``searchset``: a searchset page's matches and next link
- ``jobs``: the job of a status call, and when a job is finished
- ``terminology``: ``$expand``, ``$lookup`` and ``$translate`` inputs
- ``constructor``: hook arity and the constructor's argument errors
"""
