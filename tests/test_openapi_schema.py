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
