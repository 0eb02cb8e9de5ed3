import pytest
import yaml
from django.core.management import call_command


def test_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    # --fail-on-warn turns any drf-spectacular warning (an undocumented endpoint, say) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    assert "/api/v1/interactions/" in paths and "post" in paths["/api/v1/interactions/"]
    assert "/api/v1/scenarios/{slug}/" in paths
    assert "/api/v1/items/{external_id}/" in paths


@pytest.mark.django_db
def test_swagger_ui_is_served_from_local_assets(admin_client):
    page = admin_client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()  # the machines are offline: no CDN may be referenced


@pytest.mark.django_db
def test_the_api_root_links_the_collections_and_the_documentation(client):
    root = client.get("/api/v1/")  # no credentials needed to find one's way
    assert root.status_code == 200
    links = root.json()
    assert links["items"] == "http://testserver/api/v1/items/"
    assert links["docs"] == "http://testserver/api/v1/docs/"
    assert set(links) >= {"end_users", "interactions", "scenarios", "algorithms", "schema"}
    assert client.get(links["items"]).status_code == 401  # the collections themselves need credentials


def _schema(tmp_path) -> dict:
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target))
    return yaml.safe_load(target.read_text())


def test_the_schema_documents_error_responses_in_one_format(tmp_path):
    schema = _schema(tmp_path)
    paths = schema["paths"]

    ingest = paths["/api/v1/interactions/"]["post"]["responses"]
    assert {"400", "401", "403", "409", "413", "429", "503"} <= set(ingest)
    assert "404" in paths["/api/v1/items/{external_id}/"]["get"]["responses"]
    assert "409" in paths["/api/v1/scenarios/{slug}/"]["delete"]["responses"]
    content = ingest["400"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    example = next(iter(content["examples"].values()))["value"]
    assert set(example) == {"detail", "errors"}
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"detail", "errors"}


def test_every_operation_documents_its_errors(tmp_path):
    for path, operations in _schema(tmp_path)["paths"].items():
        for method, operation in operations.items():
            assert {"400", "429"} <= set(operation["responses"]), f"{method.upper()} {path}"


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.django_db
def test_a_browser_is_shown_the_schema_rather_than_made_to_download_it(admin_client):
    client = admin_client
    page = client.get("/api/v1/schema/", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert page.status_code == 200
    assert page["Content-Type"] == "text/plain; charset=utf-8"
    assert yaml.safe_load(page.content)["openapi"].startswith("3.")

    as_json = client.get("/api/v1/schema/?format=json", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert as_json["Content-Type"] == "application/json"
    assert "/api/v1/interactions/" in as_json.json()["paths"]


@pytest.mark.django_db
def test_openapi_tools_still_get_the_openapi_media_types(admin_client):
    client = admin_client
    page = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert page["Content-Type"].startswith("application/vnd.oai.openapi")
