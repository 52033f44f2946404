"""A person's settings through `ChatService` on a real store and the scripted server: the
default model, a system prompt per model (kept by each conversation), theme, welcome."""

from __future__ import annotations

import asyncio
import json

import pytest
from scripted_server import ScriptedServer

from chat.catalog import parse_catalog
from chat.endpoints import Endpoints
from chat.history import History
from chat.identity import Owner
from chat.service import ChatService, ServiceError

ME = Owner(id="anon:" + "7" * 40, kind="anonymous")


def _service(srv: ScriptedServer, tmp_path) -> ChatService:
    models = [
        {
            "id": name,
            "name": name.upper(),
            "system_prompt": f"You are {name}.",
            "endpoints": [{"type": "openai", "base_url": srv.base_url, "model": name}],
        }
        for name in ("a", "b")
    ]
    return ChatService(
        catalog=parse_catalog({"models": models}),
        history=History(tmp_path),
        endpoints=Endpoints(environ={}),
        max_message_chars=1000,
        frame_seconds=0,
    )


def _ask(service: ChatService, text: str, cid: str = "", model: str = "") -> str:
    async def work() -> str:
        frames = [u async for u in service.send(ME, text, cid, model)]
        return frames[-1].conversation_id

    return asyncio.run(work())


def _system(srv: ScriptedServer) -> tuple[str, str]:
    """The model and the system prompt of the last request the model received."""
    body = [r for r in srv.requests if r["body"]][-1]["body"]
    return body["model"], next(m["content"] for m in body["messages"] if m["role"] == "system")


def test_settings_start_at_their_defaults_and_bad_values_are_refused_clearly(tmp_path):
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path)
        assert service.settings(ME) == {
            "default_model": "",
            "system_prompts": {},
            "theme": "system",
            "welcome_dismissed": False,
        }
        bad = [
            ({"theme": "purple"}, "'theme' must be one of: system, light, dark."),
            ({"default_model": "zz"}, "'default_model': unknown model: zz."),
            ({"system_prompts": {"zz": "hi"}}, "'system_prompts': unknown model: zz."),
            ({"system_prompts": {"a": 3}}, "'system_prompts': the prompt for a must be text."),
            ({"system_prompts": {"a": "x" * 4001}}, "the limit is 4000"),
            ({"welcome_dismissed": "yes"}, "'welcome_dismissed' must be true or false."),
            ({"colour": "red"}, "Unknown setting: colour."),
        ]
        for changes, message in bad:
            with pytest.raises(ServiceError, match=message.replace("(", r"\(")):
                service.update_settings(ME, changes)
        assert service.settings(ME)["theme"] == "system"  # nothing was half-written
        changed = service.update_settings(ME, {"theme": "dark", "welcome_dismissed": True})
        assert (changed["theme"], changed["welcome_dismissed"]) == ("dark", True)


def test_new_conversations_use_the_default_model_chosen(tmp_path):
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        service.update_settings(ME, {"default_model": "b"})
        assert service.new_conversation(ME)["model"] == "b"
        cid = _ask(service, "hello")
        assert service.conversation(ME, cid)["model"] == "b"
        assert _system(srv)[0] == "b"
        assert service.new_conversation(ME, "a")["model"] == "a"  # a chosen model still wins


def test_a_custom_system_prompt_reaches_the_model_and_each_conversation_keeps_its_own(tmp_path):
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        service.update_settings(ME, {"system_prompts": {"a": "Answer like a pirate."}})
        pirate = _ask(service, "hello", model="a")
        assert _system(srv) == ("a", "Answer like a pirate.")
        _ask(service, "hello", model="b")  # other models keep their own
        assert _system(srv) == ("b", "You are b.")

        service.update_settings(ME, {"system_prompts": {"a": "Answer in French."}})
        _ask(service, "and now?", pirate)  # the conversation keeps the prompt it began with
        assert _system(srv) == ("a", "Answer like a pirate.")
        _ask(service, "hello", model="a")
        assert _system(srv) == ("a", "Answer in French.")

        service.update_settings(ME, {"system_prompts": {"a": ""}})  # back to the model's own
        assert service.settings(ME)["system_prompts"] == {}
        _ask(service, "hello", model="a")
        assert _system(srv) == ("a", "You are a.")


def test_imported_settings_are_taken_where_the_person_has_none(tmp_path):
    """Settings travel with an export: the newcomer gets them; someone with their own keeps
    theirs; sharing is never switched on by an import."""
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        mover = Owner(id="anon:" + "3" * 40, kind="anonymous")
        service.update_settings(
            mover, {"default_model": "b", "theme": "dark", "system_prompts": {"a": "Be brief."}}
        )
        export = service.export(mover)
        export["settings"]["share_with_model_authors"] = True
        export["settings"]["default_model"] = "gone"  # a model this server lacks
        newcomer, settled = Owner(id="anon:" + "4" * 40, kind="anonymous"), ME
        service.update_settings(settled, {"theme": "light", "system_prompts": {"a": "Mine."}})
        report = service.import_report(newcomer, json.dumps(export))
        assert any("default_model" in note for note in report.get("notes", [])), report
        got = service.settings(newcomer)
        assert (got["theme"], got["system_prompts"]) == ("dark", {"a": "Be brief."})
        assert got["default_model"] in ("", None) and not got.get("share_with_model_authors")
        service.import_report(settled, json.dumps(export))
        kept = service.settings(settled)
        assert (kept["theme"], kept["system_prompts"]) == ("light", {"a": "Mine."})
