"""Hand-written endpoint logic that the generated client class mixes in.

The generator (``codegen/client.py``) writes every public endpoint method's signature,
overloads and docstring from ``specs/operations.yaml``; a method whose manifest entry says
``body: override`` delegates to ``self._<name>`` defined here (elasticsearch-py's approach).
One module per concern: resources (create/update rules), search (paging, search_one, options),
bundles (batch/transaction), accounts ($set-accounts), access (ProjectMembership access merge),
jobs (async-job polling), terminology ($expand/$lookup/$translate), low_level (get / post /
put / delete with the contract's signatures). ``_dispatch`` turns an ``Endpoint`` plus
arguments into the one ``_request`` call of the runtime and converts the response.
"""
