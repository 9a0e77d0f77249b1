"""What every /api/v1 endpoint shares: its OpenAPI document and docs, problem details, 401s."""

from __future__ import annotations

from tests.api.v1.conftest import V1Api


def test_the_openapi_document_and_the_docs_are_served_under_v1(v1: V1Api) -> None:
    client = v1.client()
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "Leadflow API"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text.lower()


def test_an_unknown_path_is_a_problem_document(v1: V1Api) -> None:
    response = v1.client().get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"].endswith("/no-such-thing")
