"""models.yaml: the shipped file loads, and each kind of mistake says file, model, field, why."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.catalog import CatalogError, endpoint_available, endpoint_token, load_catalog

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_shipped_file_loads():
    catalog = load_catalog(ROOT / "models.yaml")
    assert catalog.default.id == "smollm2-135m"
    assert catalog.default.endpoints[0].type == "local"
    retired = [m for m in catalog.models if m.retired]
    assert {m.id for m in retired} >= {
        "meta-llama/Llama-2-70b-chat-hf",
        "codellama/CodeLlama-34b-Instruct-hf",
        "tiiuae/falcon-180B-chat",
        "mistralai/Mistral-7B-Instruct-v0.1",
        "CohereForAI/c4ai-command-r-plus",
        "google/gemma-7b-it",
        "OpenAssistant/oasst-sft-6-llama-30b-xor",
    }
    assert all(catalog.get(m.retired.transfer_to).retired is None for m in retired)


RETIRED = (
    "  - {{id: b, name: B, endpoints: [{{type: hf}}],"
    " retired: {{on: 2024-06-01, transfer_to: {to}}}}}\n"
)
GOOD = """
models:
  - id: a
    name: A
    endpoints: [{type: local}]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("name: A", "nmae: A"), ["model 'a'", "'nmae'", "unknown field"]),
        (
            GOOD.replace("name: A", "name: A\n    context_window: lots"),
            ["'context_window'", "integer"],
        ),
        (
            GOOD.replace("{type: local}", "{type: grpc}"),
            ["model 'a'", "'endpoints[0]'", "local, hf, tgi, openai"],
        ),
        (
            GOOD.replace("{type: local}", "{type: openai}"),
            ["'endpoints[0].base_url'", "Field required"],
        ),
        (
            GOOD.replace("{type: local}", "{type: tgi, url: ftp://x}"),
            ["'endpoints[0].url'", "pattern"],
        ),
        (
            GOOD.replace("{type: local}", "{type: local, weight: 0}"),
            ["'endpoints[0].weight'", "greater than 0"],
        ),
        (
            GOOD + "    parameters: {temperature: 9}\n",
            ["'parameters.temperature'", "less than or equal to 2"],
        ),
        (
            GOOD + "    parameters: {temprature: 0.5}\n",
            ["'parameters.temprature'", "unknown field"],
        ),
        (
            GOOD.replace("endpoints: [{type: local}]", "endpoints: []"),
            ["'endpoints'", "at least 1"],
        ),
        (GOOD + "  - {id: a, name: B, endpoints: [{type: local}]}\n", ["unique", "a"]),
        (
            GOOD + RETIRED.format(to="zz"),
            ["transfer_to 'zz'"],
        ),
        ("models:\n  - id: a\n    name: [unclosed\n", ["line", "not valid YAML"]),
        ("- just a list\n", ["'models' list"]),
        ("models: []\n", ["'models'", "at least 1"]),
    ],
)
def test_mistakes_are_named(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "nope.yaml")


def test_retired_on_is_a_date_not_a_boolean(tmp_path):
    catalog = load_catalog(
        write(
            tmp_path,
            GOOD + RETIRED.format(to="a"),
        )
    )
    assert str(catalog.get("b").retired.on) == "2024-06-01"
    assert [m.id for m in catalog.listed] == ["a"]


def test_tokens_go_only_where_they_belong(tmp_path):
    catalog = load_catalog(
        write(
            tmp_path,
            """
models:
  - id: a
    name: A
    endpoints:
      - {type: hf}
      - {type: openai, base_url: "http://x/v1", token_env: MY_KEY}
      - {type: tgi, url: "http://y"}
""",
        )
    )
    hf, openai, tgi = catalog.get("a").endpoints
    env = {"HF_TOKEN": "hf_secret", "MY_KEY": "mine"}
    assert endpoint_token(hf, env) == "hf_secret"
    assert endpoint_token(openai, env) == "mine"
    assert endpoint_token(tgi, env) is None
    assert not endpoint_available(hf, {}) and endpoint_available(tgi, {})
    assert not endpoint_available(openai, {"HF_TOKEN": "x"})


@pytest.mark.parametrize(
    ("endpoint", "model_id", "field"),
    [
        ("{type: hf, model: 'http://evil.example/v1'}", "a", "'endpoints[0].model'"),
        ("{type: hf, model: '//evil.example/v1'}", "a", "'endpoints[0].model'"),
        ("{type: hf}", "'http://evil.example/v1'", "'endpoints[0].model'"),
    ],
)
def test_hf_endpoint_whose_model_is_a_url_is_refused(tmp_path, endpoint, model_id, field):
    """huggingface_hub sends a model given as a URL to that URL, with the server's HF_TOKEN."""
    text = GOOD.replace("{type: local}", endpoint).replace("id: a", f"id: {model_id}")
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    model_name = model_id.strip("'")
    for part in (str(path), f"model {model_name!r}", field, "HF_TOKEN", "Hugging Face model id"):
        assert part in message, message


def test_hf_endpoint_with_hub_model_ids_loads(tmp_path):
    text = GOOD.replace("{type: local}", "{type: hf, model: Qwen/Qwen3-8B, provider: novita}")
    text += "  - {id: meta-llama/Llama-3.3-70B-Instruct, name: L, endpoints: [{type: hf}]}\n"
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.get("a").endpoints[0].model == "Qwen/Qwen3-8B"
