"""The README and docs/: the Spaces front matter is valid, the Python snippets run as written,
and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import gradio
import yaml
from gradio_client import Client

from chat.catalog import parse_catalog
from chat.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
HTTP_API = (ROOT / "docs" / "http-api.md").read_text()
CLIENT_API = (ROOT / "docs" / "client-api.md").read_text()

CONTRACT = {
    "/models",
    "/new_conversation",
    "/chat",
    "/retry",
    "/edit",
    "/continue",
    "/follow",
    "/stop",
    "/conversations",
    "/search",
    "/conversation",
    "/switch_branch",
    "/rename_conversation",
    "/feedback",
    "/delete_conversation",
    "/delete_all_conversations",
    "/export",
    "/import",
    "/export_markdown",
    "/settings",
    "/update_settings",
    "/share",
    "/shares",
    "/revoke_share",
    "/detect_watermark",
}


def front_matter() -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", README, re.S)
    assert match, "README.md starts with Spaces front matter"
    return yaml.safe_load(match.group(1))


def test_front_matter_is_a_valid_space():
    meta = front_matter()
    for key in ("title", "sdk", "sdk_version", "app_file", "python_version", "short_description"):
        assert meta.get(key), key
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == gradio.__version__, "the Space runs the Gradio we pin"
    assert (ROOT / meta["app_file"]).is_file()
    assert meta["hf_oauth"] is True and {"openid", "profile"} <= set(meta["hf_oauth_scopes"])
    assert len(meta["short_description"]) <= 60
    pinned = (ROOT / "requirements.txt").read_text()
    assert f"gradio=={meta['sdk_version']}" in pinned


def python_snippets(text: str, section: str = "") -> list[str]:
    """The Python blocks of a page, or of its `## section` when one is named."""
    if section:
        text = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_python_snippets_run_against_the_app(app, capsys):
    # docs/client-api.md's examples, then docs/http-api.md's, continue the README's: one
    # namespace, in this order.
    pages = {
        "README.md": python_snippets(README, "Use it from Python"),
        "docs/client-api.md": python_snippets(CLIENT_API),
        "docs/http-api.md": python_snippets(HTTP_API),
    }
    assert len(pages["README.md"]) >= 6 and all(pages.values())
    namespace: dict = {}
    for page, snippets in pages.items():
        for code in snippets:
            code = code.replace('"http://127.0.0.1:7860/"', repr(app.url))
            exec(compile(code, page, "exec"), namespace)
    printed = capsys.readouterr().out
    assert "smollm2-135m" in printed
    assert "{'imported': 1}" in printed and "{'deleted': True}" in printed
    assert "{'deleted': 1}" in printed
    assert "complete " in printed, "the plain HTTP chat streamed to its end"
    assert "\n2\n" in printed, "an edit_of beside the question"


def test_the_models_example_is_a_valid_catalogue():
    (example,) = re.findall(r"```yaml\n(.*?)```", README, re.S)
    catalog = parse_catalog(yaml.safe_load(example), source="README.md")
    assert [endpoint.type for endpoint in catalog.models[0].endpoints] == ["tgi", "hf"]


def test_every_setting_is_documented():
    """A deployer finds each variable Parlor reads in the README or a page of docs/."""
    pages = [README] + [page.read_text() for page in sorted((ROOT / "docs").glob("*.md"))]
    documented = "\n".join(pages)
    prefix = Settings.model_config["env_prefix"]
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias or f"{prefix}{name}".upper()
        assert f"`{variable}`" in documented, f"{variable} is not documented"


def test_view_api_lists_the_contract_with_descriptions(app):
    api = Client(app.url, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == CONTRACT, "UI events stay out of the API"
    assert not api["unnamed_endpoints"]
    for name in CONTRACT:
        assert api["named_endpoints"][name]["description"], name


def test_the_worked_examples_models_file_is_a_valid_catalog():
    """README's "Make it yours" names examples/acme-models.yaml: it must start."""
    path = ROOT / "examples" / "acme-models.yaml"
    catalog = parse_catalog(yaml.safe_load(path.read_text()), source=str(path))
    assert [m.id for m in catalog.models] == ["meta-llama/Llama-3.3-70B-Instruct", "smollm2-135m"]
    assert "acme-models.yaml" in README
