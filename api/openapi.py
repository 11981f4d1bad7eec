"""Completes /openapi.json from the access policy: security schemes, each operation's permission, the
problem responses every operation can give, the Idempotency-Key header of every write, and success bodies
reduced to the named models their routes document."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.access import AccessPolicy
from api.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_CHARS, REPLAYED_HEADER, WRITE_METHODS
from api.problems import Problem, problem_responses
from api.security import API_KEY_HEADER

SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 token: `sub`, `roles` (viewer, operator, integrator, admin), optional `scope` "
        "(extra permissions such as pii:read), `iss`, `aud`, `exp`. Mint one with `yekuo auth token`.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "key of a legacy system; the hub keeps only its SHA-256 (`yekuo auth hash-key`).",
    },
}

_IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "retrying with the same key and request returns the first response (header "
    f"`{REPLAYED_HEADER}: true`); the same key with another request is refused (409). Kept 24 hours.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[\\x20-\\x7e]+$"},
    "example": "3f1c9a52-6d0e-4d55-9a8e-0d6c2f0b7e11",
}


def install_openapi(app: FastAPI, policy: AccessPolicy) -> None:
    """Replace app.openapi with a generator that adds what the policy and the middleware define."""

    def generate() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _complete(operation, method.upper(), path, policy)
        _drop_framework_validation_models(components["schemas"], schema)
        app.openapi_schema = schema
        return schema

    app.openapi = generate  # type: ignore[method-assign]


def _complete(operation: dict[str, Any], method: str, path: str, policy: AccessPolicy) -> None:
    needed = policy.routes.get((method, path))
    responses = operation.setdefault("responses", {})
    codes = ["internal-error"]
    if needed is None:
        operation["security"] = []
    else:
        operation["security"] = [{"bearerAuth": []}, {"apiKey": []}]
        roles = ", ".join(policy.roles_granting(needed)) or "none (an explicit extra scope)"
        note = f"Needs permission `{needed}` (roles: {roles})."
        operation["description"] = f"{operation.get('description', '').strip()}\n\n{note}".strip()
        operation["x-permission"] = needed
        codes += ["unauthenticated", "forbidden"]
    if operation.get("parameters") or operation.get("requestBody"):
        codes.append("validation-failed")
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        codes += ["malformed-json", "unsupported-media-type"]
    if method in WRITE_METHODS:
        codes += ["idempotency-key-reused", "payload-too-large"]
        parameters = operation.setdefault("parameters", [])
        if not any(parameter.get("name") == IDEMPOTENCY_HEADER for parameter in parameters):
            parameters.append(dict(_IDEMPOTENCY_PARAMETER))
    for status, response in responses.items():
        if status.startswith("2"):
            _name_success_schemas(response.get("content", {}))
    # The framework's own 422 body is replaced by a problem (api/problems.py), so it is not documented.
    validation = responses.get("422", {}).get("content", {})
    if "HTTPValidationError" in str(validation.get("application/json", {})):
        del validation["application/json"]
    for status, response in problem_responses(*codes).items():
        entry = responses.setdefault(str(status), {"description": response["description"]})
        entry.setdefault("content", {}).update(response["content"])


def _name_success_schemas(content: dict[str, Any]) -> None:
    """Leave each success body with the named model its route documents, and text bodies typed as text.

    Handlers return plain dicts, so the framework merges the `dict[str, Any]` of their return annotation
    into the named model's `$ref`; code generators then see an anonymous object instead of the model.
    """
    for media_type, body in content.items():
        schema = body.get("schema") or {}
        if "$ref" in schema:
            body["schema"] = {"$ref": schema["$ref"]}
        elif not schema and not media_type.endswith("json"):
            body["schema"] = {"type": "string", "description": f"the {media_type} document"}


def _drop_framework_validation_models(schemas: dict[str, Any], document: dict[str, Any]) -> None:
    """Remove the framework's 422 models once no response refers to them: a client generator would
    otherwise emit types the hub never sends."""
    for name in ("HTTPValidationError", "ValidationError"):
        reference = json.dumps(f"#/components/schemas/{name}")
        if name in schemas and reference not in json.dumps(document):
            del schemas[name]
