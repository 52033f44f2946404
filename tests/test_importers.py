"""Bringing one's history from HuggingChat, ChatGPT and Open WebUI: each sample export of
tests/fixtures/imports imports with its titles, times, models and branches; a second import
adds nothing; what cannot be read is counted; a hostile zip is refused; the import limits
hold. Then the same through the launched app's `/import`, and `/export_markdown`."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect
from test_browser_pages import open_data_panel, toast
from test_import_limits import LIMITS, ME

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService, ServiceError
from chat.settings import ImportLimits

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "imports"
HUGGINGCHAT = SAMPLES / "huggingchat-conversations.json"
HUGGINGCHAT_ZIP = SAMPLES / "huggingchat-export.zip"
CHATGPT = SAMPLES / "chatgpt-conversations.json"
OPENWEBUI = SAMPLES / "openwebui-chat-export.json"
ROOMY = ImportLimits()  # today's default limits
ZIP_URL = "data:application/zip;base64,"  # how /import takes a zip as text

# What each sample holds, as a person sees it after the import: per conversation (by
# title), the model's name, the shown branch, and the texts of the other branch.
EXPECTED = {
    HUGGINGCHAT: {
        "🌋 Why volcanoes erupt": (
            "meta-llama/Llama-3.3-70B-Instruct",
            [
                "Why do volcanoes erupt?",
                "Pressure from gas dissolved in magma builds until the rock gives way.",
            ],
            ["Magma rises because it is lighter than the rock around it."],
        ),
        "Haiku about rain": (
            "smollm2-135m",
            ["A haiku about rain, please.", "Soft rain on the roof"],
            [],
        ),
    },
    CHATGPT: {
        "Sourdough starter": (  # current_node names the first answer, not the newest
            "gpt-4o",
            ["How do I feed a starter?", "Equal weights of flour and water, daily."],
            ["Discard half, then add flour and water."],
        ),
        "Capital of Peru": ("gpt-4o", ["Capital of Peru?", "Lima."], []),
    },
    OPENWEBUI: {
        "Tides": (  # the question was edited: currentId is on the second one's branch
            "llama3.1:8b",
            ["What causes ocean tides, in one line?", "The Moon's and Sun's gravity."],
            ["What causes tides?", "Mostly the Moon's pull."],
        ),
        "Greeting": ("smollm2-135m", ["Hello!", "Hi there."], []),
    },
}
EXPECTED[HUGGINGCHAT_ZIP] = EXPECTED[HUGGINGCHAT]
EXPECTED[CHATGPT]["Capital of Peru"] = ("o3", *EXPECTED[CHATGPT]["Capital of Peru"][1:])
SAMPLE_IDS = ["huggingchat", "huggingchat-zip", "chatgpt", "openwebui"]


def chat_service(tmp_path: Path, limits: ImportLimits = ROOMY) -> ChatService:
    """The service over a real store; its one model, M, has the test catalog's id."""
    endpoint = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    model = {"id": "smollm2-135m", "name": "M", "endpoints": [endpoint]}
    return ChatService(
        catalog=parse_catalog({"models": [model]}),
        history=History(tmp_path),
        endpoints=Endpoints(environ={}),
        max_message_chars=limits.message_chars,
        frame_seconds=0,
        import_limits=limits,
    )


def by_title(chat, owner=ME) -> dict[str, dict]:
    return {c["title"]: chat.conversation(owner, c["id"]) for c in chat.conversations(owner)}


def check_imported(conversations: dict[str, dict], expected: dict) -> None:
    """Each conversation as `expected`: model name, the branch shown, the other branch."""
    assert sorted(conversations) == sorted(expected)
    for title, (model, shown, other) in expected.items():
        conv = conversations[title]
        assert conv["model"] == model, title
        assert [m["content"] for m in conv["messages"]] == shown, title
        hidden = [m["content"] for m in conv["all_messages"] if m["id"] not in conv["path"]]
        assert hidden == other, title
        assert [m["role"] for m in conv["messages"]] == ["user", "assistant"], title
        assert conv["created_at"] <= conv["updated_at"], title
        if other:  # the branch is a sibling of a shown message, as Parlor's own are
            assert any(len(m["siblings"]) == 2 for m in conv["messages"]), title


@pytest.mark.parametrize("sample", list(EXPECTED), ids=SAMPLE_IDS)
def test_each_format_imports_with_its_titles_models_and_branches(tmp_path, sample):
    chat = chat_service(tmp_path)
    report = chat.import_report(ME, sample.read_bytes())
    assert report["imported"] == 2
    assert "skipped" not in report, "nothing of a sample is left out"
    check_imported(by_title(chat), EXPECTED[sample])


def test_times_and_reasoning_come_across(tmp_path):
    chat = chat_service(tmp_path)
    chat.import_report(ME, HUGGINGCHAT.read_bytes())
    chat.import_report(ME, CHATGPT.read_bytes())
    volcano, sourdough = (
        by_title(chat)["🌋 Why volcanoes erupt"],
        by_title(chat)["Sourdough starter"],
    )
    assert volcano["created_at"].startswith("2025-06-01T10:00:00")
    assert volcano["updated_at"].startswith("2025-06-01T10:05:00")
    magma = next(m for m in volcano["all_messages"] if m["content"].startswith("Magma"))
    assert magma["reasoning"] == "Explain buoyancy of magma first."
    assert sourdough["created_at"].startswith("2025-01-21T22:53:20")
    models = {m["content"][:7]: m["model"] for m in sourdough["all_messages"]}
    assert models == {"How do ": None, "Equal w": "gpt-4o", "Discard": "gpt-4o-mini"}


def test_a_model_this_server_lacks_keeps_its_name_and_the_default_answers(tmp_path):
    chat = chat_service(tmp_path)
    report = chat.import_report(ME, CHATGPT.read_bytes())
    assert report["notes"] == [
        "Made with models this server does not have (gpt-4o, o3): their names are kept, and "
        "M answers in those conversations."
    ]
    conv = by_title(chat)["Capital of Peru"]
    assert conv["model"] == "o3"
    assert conv["notice"] == "o3 is not on this server: M continues this conversation."


@pytest.mark.parametrize("sample", list(EXPECTED), ids=SAMPLE_IDS)
def test_importing_the_same_file_twice_adds_nothing(tmp_path, sample):
    chat = chat_service(tmp_path)
    assert chat.import_report(ME, sample.read_bytes())["imported"] == 2
    again = chat.import_report(ME, sample.read_bytes())
    assert again == {"imported": 0}, "nothing added, nothing to say about its models"
    assert len(chat.conversations(ME)) == 2


def test_an_unreadable_conversation_is_counted_and_the_rest_imported(tmp_path):
    conversations = json.loads(CHATGPT.read_text())
    broken = copy.deepcopy(conversations[1])
    broken["title"] = "Broken one"
    broken["mapping"] = "not a tree"
    empty = {"id": "e", "title": "Empty", "mapping": {}, "current_node": None}
    chat = chat_service(tmp_path)
    report = chat.import_report(ME, json.dumps([conversations[0], broken, empty, 42]))
    assert report["imported"] == 1
    assert report["skipped"] == 3
    assert report["reasons"] == [
        "Conversation 2 (\"Broken one\"): its 'mapping' of messages is not an object.",
        'Conversation 3 ("Empty"): it holds no message to import.',
        "Conversation 4: it cannot be read (its shape is not that of a ChatGPT export).",
    ]
    assert list(by_title(chat)) == ["Sourdough starter"]


def zipped(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


HOSTILE_ZIPS = [
    pytest.param(
        zipped({"conversations.json": HUGGINGCHAT.read_bytes(), "../../etc/cron.d/x": b"x"}),
        "outside the archive \\(a path traversal\\)",
        id="traversal",
    ),
    pytest.param(
        zipped({"/etc/passwd": b"x", "conversations.json": b"[]"}),
        "outside the archive",
        id="absolute",
    ),
    pytest.param(  # 1 MB of spaces that pack into ~1 KB; the limit is 20,000 bytes
        zipped({"conversations.json": b"[" + b" " * 2**20 + b"]"}),
        "The conversations.json in this zip is too large to import \\(1.0 MB\\); the limit is "
        "20 KB",
        id="bomb",
    ),
    pytest.param(
        zipped({"notes.txt": b"hello"}), "This zip holds no conversations.json", id="no-json"
    ),
    pytest.param(b"PK\x03\x04 not really a zip", "This zip is damaged", id="damaged"),
]


@pytest.mark.parametrize(("blob", "reason"), HOSTILE_ZIPS)
def test_a_hostile_or_damaged_zip_is_refused_with_a_clear_message(tmp_path, blob, reason):
    chat = chat_service(tmp_path, LIMITS)
    with pytest.raises(ServiceError, match=reason):
        chat.import_report(ME, blob)
    assert chat.conversations(ME) == [], "nothing of it is stored"


def test_a_zip_bomb_whose_header_lies_about_its_size_is_refused(tmp_path):
    """A member whose declared size is small but whose data unpacks larger: it is read no
    further than the limit."""
    blob = bytearray(zipped({"conversations.json": b"[" + b" " * 200_000 + b"]"}))
    small = (1000).to_bytes(4, "little")
    local = blob.index(b"PK\x03\x04")
    blob[local + 22 : local + 26] = small  # the local header's uncompressed size
    central = blob.index(b"PK\x01\x02")
    blob[central + 24 : central + 28] = small  # and the central directory's
    chat = chat_service(tmp_path, LIMITS)
    with pytest.raises(ServiceError, match="its conversations"):
        chat.import_report(ME, bytes(blob))
    assert chat.conversations(ME) == []


def test_a_file_of_an_unknown_shape_is_refused_saying_what_is_expected(tmp_path):
    chat = chat_service(tmp_path)
    with pytest.raises(ServiceError, match="should be a Parlor, HuggingChat, ChatGPT or Open"):
        chat.import_report(ME, "[1, 2]")
    with pytest.raises(ServiceError, match="neither a zip nor UTF-8 text"):
        chat.import_report(ME, b"\xff\xfe\x00junk")


def test_a_zip_sent_as_a_data_url_of_any_type_imports(tmp_path):
    """Browsers on Windows call a zip application/x-zip-compressed."""
    chat = chat_service(tmp_path)
    blob = base64.b64encode(HUGGINGCHAT_ZIP.read_bytes()).decode()
    assert chat.import_report(ME, "data:application/x-zip-compressed;base64," + blob) == {
        "imported": 2,
        "notes": [
            "Made with models this server does not have (meta-llama/Llama-3.3-70B-Instruct): "
            "their names are kept, and M answers in those conversations."
        ],
    }
    with pytest.raises(ServiceError, match="is not base64"):
        chat.import_report(ME, ZIP_URL + "not base64!")


def test_a_long_title_or_model_name_is_shortened_not_refused(tmp_path):
    conversations = json.loads(OPENWEBUI.read_text())
    conversations[0]["title"] = "Tides " + "t" * 300
    conversations[0]["chat"]["models"] = ["m" * 300]
    chat = chat_service(tmp_path)
    assert chat.import_report(ME, json.dumps(conversations))["imported"] == 2
    tides = next(c for c in chat.conversations(ME) if c["title"].startswith("Tides"))
    assert len(tides["title"]) == 200 and tides["model"] == "m" * 200


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def damaged_samples(draw) -> list:
    """A sample export with a few of its values, anywhere in it, replaced by others."""
    items = json.loads(draw(st.sampled_from([HUGGINGCHAT, CHATGPT, OPENWEBUI])).read_text())
    for _ in range(draw(st.integers(1, 4))):
        node = items
        while keys := list(range(len(node))) if isinstance(node, list) else list(node):
            key = draw(st.sampled_from(keys))
            if isinstance(node[key], list | dict) and node[key] and draw(st.booleans()):
                node = node[key]
                continue
            node[key] = draw(JSON)
            break
    return items


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(items=damaged_samples())
def test_a_damaged_export_imports_what_it_can_and_counts_the_rest(tmp_path_factory, items):
    """Every conversation of the file is either imported (and opens) or counted as skipped;
    a file refused whole stores nothing."""
    chat = chat_service(tmp_path_factory.mktemp("fuzz"))
    try:
        report = chat.import_report(ME, json.dumps(items))
    except ServiceError:
        assert chat.conversations(ME) == []
        return
    assert report["imported"] + report.get("skipped", 0) == len(items)
    assert len(report.get("reasons", [])) == report.get("skipped", 0)
    listed = chat.conversations(ME)
    assert len(listed) == report["imported"]
    for summary in listed:
        shown = chat.conversation(ME, summary["id"])["messages"]
        assert shown and {m["role"] for m in shown} <= {"user", "assistant"}


# -- limits: today's, for every format ----------------------------------------------------


def test_every_format_is_refused_past_the_size_and_count_limits(tmp_path):
    chat = chat_service(tmp_path, LIMITS)  # 20,000 bytes, 3 conversations
    chatgpt = json.loads(CHATGPT.read_text())
    with pytest.raises(ServiceError, match="holds 4 conversations; an import may hold up to 3"):
        chat.import_report(ME, json.dumps(chatgpt * 2))
    padded = json.loads(OPENWEBUI.read_text())
    padded[0]["padding"] = "x" * 30_000
    with pytest.raises(ServiceError, match="too large to import"):
        chat.import_report(ME, json.dumps(padded))
    with pytest.raises(ServiceError, match="This zip is too large to import"):
        chat.import_report(ME, zipped({"conversations.json": b"x" * 30_000}, compression=0))
    assert chat.conversations(ME) == []


def test_a_conversation_past_the_length_limits_is_skipped_saying_which(tmp_path):
    """Lengths (messages in a conversation, characters in a message, a title) are those
    of a Parlor export: a conversation past one is left out and reported, the rest come."""
    huggingchat = json.loads(HUGGINGCHAT.read_text())
    long_question = copy.deepcopy(huggingchat[1])
    long_question["_id"], long_question["title"] = "x1", "Long"
    long_question["messages"][0]["content"] = "q" * 101
    many = copy.deepcopy(huggingchat[1])
    many["_id"], many["title"] = "x2", "Many"
    many["messages"] = many["messages"] * 3
    chat = chat_service(tmp_path, LIMITS)  # 100 characters a message, 4 messages
    report = chat.import_report(ME, json.dumps([huggingchat[1], long_question, many]))
    assert report["imported"] == 1
    assert report["skipped"] == 2
    assert "a message of 101 characters; the limit is 100" in report["reasons"][0]
    assert "holds 6 messages; the limit is 4 a conversation" in report["reasons"][1]


# -- Markdown -------------------------------------------------------------------------------


def test_one_conversation_exports_as_markdown_showing_its_branch(tmp_path):
    chat = chat_service(tmp_path)
    chat.import_report(ME, HUGGINGCHAT.read_bytes())
    conv = by_title(chat)["🌋 Why volcanoes erupt"]
    text = chat.export_markdown(ME, conv["id"])
    assert text.startswith("# 🌋 Why volcanoes erupt\n\n- Model: meta-llama/Llama-3.3-70B")
    assert "- Started: 2025-06-01 10:00 UTC" in text
    assert "### You · 2025-06-01 10:00 UTC\n\nWhy do volcanoes erupt?" in text
    assert "Pressure from gas dissolved in magma" in text, "the branch shown"
    assert "Magma rises" not in text, "not the other branch"
    chat.switch_branch(ME, conv["id"], conv["messages"][1]["siblings"][0])
    text = chat.export_markdown(ME, conv["id"])
    assert (
        "<details><summary>Reasoning</summary>\n\nExplain buoyancy of magma first.\n\n"
        "</details>\n\nMagma rises" in text
    )
    with pytest.raises(ServiceError, match="conversation not found"):
        chat.export_markdown(Owner(id="anon:" + "6" * 40, kind="anonymous"), conv["id"])


# -- through the launched app -------------------------------------------------------------


def zip_text(path: Path) -> str:
    """A zip as /import's text argument."""
    return ZIP_URL + base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize(
    ("sample", "data"),
    [
        (HUGGINGCHAT, HUGGINGCHAT.read_text()),
        (HUGGINGCHAT_ZIP, zip_text(HUGGINGCHAT_ZIP)),
        (CHATGPT, CHATGPT.read_text()),
        (OPENWEBUI, OPENWEBUI.read_text()),
    ],
    ids=SAMPLE_IDS,
)
def test_the_api_imports_each_sample_once(app, sample, data):
    c = Client(app.url, verbose=False)
    first = c.predict(data, api_name="/import")
    assert first["imported"] == 2 and "skipped" not in first
    assert c.predict(data, api_name="/import")["imported"] == 0, "twice adds nothing"
    listed = c.predict(api_name="/conversations")
    conversations = {s["title"]: c.predict(s["id"], api_name="/conversation") for s in listed}
    check_imported(conversations, EXPECTED[sample])


def test_the_api_reports_what_it_could_not_read_and_refuses_a_hostile_zip(app):
    c = Client(app.url, verbose=False)
    chatgpt = json.loads(CHATGPT.read_text())
    report = c.predict(json.dumps([*chatgpt, {"title": "Junk"}]), api_name="/import")
    assert report["imported"] == 2 and report["skipped"] == 1
    assert report["reasons"] == [
        'Conversation 3 ("Junk"): it cannot be read (its shape is not that of a ChatGPT export).'
    ]
    hostile = zipped({"conversations.json": b"[]", "../escape.json": b"[]"})
    with pytest.raises(Exception, match="path traversal"):
        c.predict(ZIP_URL + base64.b64encode(hostile).decode(), api_name="/import")


def test_an_imported_conversation_goes_on_with_the_default_model_and_exports_as_markdown(app):
    c = Client(app.url, verbose=False)
    c.predict(CHATGPT.read_text(), api_name="/import")
    peru = next(s for s in c.predict(api_name="/conversations") if s["title"] == "Capital of Peru")
    conv = c.predict(peru["id"], api_name="/conversation")
    assert conv["notice"].startswith("o3 is not on this server: SmolLM2 135M")
    cid, answer = c.predict("And of Chile?", peru["id"], api_name="/chat")
    assert cid == peru["id"] and answer.strip(), "the embedded model answered"
    text = c.predict(peru["id"], api_name="/export_markdown")
    assert text.startswith("# Capital of Peru\n\n- Model: o3\n")
    assert "Capital of Peru?" in text and "Lima." in text and "And of Chile?" in text
    stranger = Client(app.url, verbose=False)
    with pytest.raises(Exception, match="conversation not found"):
        stranger.predict(peru["id"], api_name="/export_markdown")


# -- the page's "Your data" panel ----------------------------------------------------------


def test_the_page_imports_a_huggingchat_zip_and_says_what_it_could_not_read(people, app, tmp_path):
    me = people(app.url).open()
    open_data_panel(me)
    upload = me.page.locator("#your-data input[type=file]")
    before = me.queue()["joined"]
    upload.set_input_files(HUGGINGCHAT_ZIP)
    me.settle(before + 1)
    expect(toast(me)).to_contain_text("Imported 2 conversations.")
    expect(toast(me)).to_contain_text("meta-llama/Llama-3.3-70B-Instruct")

    junk = tmp_path / "conversations.json"
    junk.write_text(json.dumps([*json.loads(OPENWEBUI.read_text()), {"title": "Junk"}]))
    before = me.queue()["joined"]
    upload.set_input_files(junk)
    me.settle(before + 1)
    expect(toast(me)).to_contain_text(
        'Imported 2 conversations. 1 could not be read: Conversation 3 ("Junk")'
    )
