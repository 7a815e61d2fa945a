"""A schemathesis check for the contract test (loaded as its hooks module; no tests here).

schemathesis' own ``positive_data_acceptance`` cannot run on these APIs: a partner body that
matches its JSON Schema may still break a rule JSON Schema cannot state (a CPR number's birth
date, a source that is not the partner's), and is rightly refused with 422. What it would
catch for parameters, this does: a request the document calls valid, refused with a field
error that names a header, query or path parameter, means the document lacks the server's rule.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def documented_parameter_refused(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        body: Any = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return None
    parameters = {p.name.lower() for p in case.operation.iter_parameters()}
    blamed = sorted(
        {
            str(e.get("field"))
            for e in errors
            if isinstance(e, dict) and str(e.get("field", "")).lower() in parameters
        }
    )
    if blamed:
        raise AssertionError(
            f"The server refused {', '.join(blamed)} with 422 although the OpenAPI document "
            "allows the value sent: declare the server's rule in the document"
        )
    return None
