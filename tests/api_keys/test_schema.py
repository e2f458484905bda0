"""The OpenAPI document tells clients about keys: the X-API-Key scheme, each operation's scope,
and the 401/403/429 answers."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.api_keys.test_scope_matrix import CONTRACT, _template


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        if path.startswith("/api/v1/"):
            for method, operation in item.items():
                yield method.upper(), path, operation


def test_the_api_key_security_scheme_is_the_x_api_key_header(schema):
    scheme = schema["components"]["securitySchemes"]["ApiKeyAuth"]

    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")


def test_every_api_operation_requires_the_key_and_documents_auth_answers(schema):
    operations = list(_operations(schema))

    assert operations
    for method, path, operation in operations:
        assert {"ApiKeyAuth": []} in operation["security"], (method, path)
        assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)


def test_each_operation_documents_the_scope_of_the_contract(schema):
    contract = {(method, _template(path)): scope for method, path, scope in CONTRACT}

    documented = {(m, _template(path)): op["x-required-scope"] for m, path, op in _operations(schema)}

    assert documented == {key: contract.get(key) for key in documented}
