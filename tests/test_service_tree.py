"""`ChatService` with conversations as trees and answers as server tasks, on a real store and
the scripted server: edit, answer again, switch, continue, follow, stop and the limits."""

from __future__ import annotations

import asyncio

import pytest
from scripted_server import ScriptedServer
from test_service import _service

from chat.identity import Owner
from chat.service import ServiceError

ME = Owner(id="anon:" + "5" * 40, kind="anonymous")
OTHER = Owner(id="anon:" + "6" * 40, kind="anonymous")


def _run(work):
    return asyncio.run(work)


async def _last(updates):
    frames = [u async for u in updates]
    return frames[-1] if frames else None


def _sent(srv: ScriptedServer) -> list[dict]:
    """The messages of the last request the model received."""
    return [r for r in srv.requests if r["body"]][-1]["body"]["messages"]


def test_editing_a_question_starts_a_branch_and_keeps_the_old_one(tmp_path):
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)

        async def work():
            cid = (await _last(service.send(ME, "apples"))).conversation_id
            await _last(service.send(ME, "pears", cid))
            first = service.conversation(ME, cid)
            pears = first["messages"][2]
            edited = await _last(service.edit(ME, cid, pears["id"], "plums"))
            return cid, first, edited

        cid, first, edited = _run(work())
        conv = service.conversation(ME, cid)
        assert [m["content"] for m in conv["messages"]] == ["apples", "apples", "plums", "plums"]
        assert edited.text == "plums"
        # The model saw the branch only: the edited-away question is not in its prompt.
        assert [m["content"] for m in _sent(srv) if m["role"] == "user"] == ["apples", "plums"]
        plums = conv["messages"][2]
        assert plums["siblings"] == [first["messages"][2]["id"], plums["id"]]
        assert len(conv["all_messages"]) == 6  # nothing was deleted

        back = service.switch_branch(ME, cid, first["messages"][2]["id"])
        assert [m["content"] for m in back["messages"]] == ["apples", "apples", "pears", "pears"]
        # The shown branch is stored: it is what the next message follows.
        _run(_last(service.send(ME, "and cherries", cid)))
        assert [m["content"] for m in _sent(srv) if m["role"] == "user"] == [
            "apples",
            "pears",
            "and cherries",
        ]


def test_answering_again_adds_a_sibling_and_all_of_them_can_be_browsed(tmp_path):
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path)

        async def work():
            answers = []
            for tokens in (["one"], ["two"], ["three"]):
                srv.script("tokens", tokens=tokens)
                if not answers:
                    last = await _last(service.send(ME, "count"))
                else:
                    last = await _last(service.retry(ME, answers[0].conversation_id))
                answers.append(last)
            return answers

        answers = _run(work())
        cid = answers[0].conversation_id
        conv = service.conversation(ME, cid)
        shown = conv["messages"][-1]
        assert shown["content"] == "three"
        assert shown["siblings"] == [a.message_id for a in answers]
        for answer in answers:
            conv = service.switch_branch(ME, cid, answer.message_id)
            assert conv["messages"][-1]["content"] == answer.text
            assert conv["path"][-1] == answer.message_id
        # Answering again never sends an earlier answer as part of the prompt.
        assert [m["role"] for m in _sent(srv)] == ["user"]


def test_an_answer_cut_by_the_length_limit_or_stopped_can_be_continued(tmp_path):
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path)
        srv.script("slow", tokens=[f" w{i}" for i in range(100)], delay=0.05)

        async def stopped_then_continued():
            cid, stopped = "", None
            async for u in service.send(ME, "Tell me a story"):
                cid = u.conversation_id
                if u.text.count("w") >= 3 and service.stop(ME, cid):
                    pass
                stopped = u
            srv.script("tokens", tokens=[" and", " the", " end."])
            return cid, stopped, await _last(service.continue_answer(ME, cid))

        cid, stopped, continued = _run(stopped_then_continued())
        assert stopped.notice == "Stopped." and stopped.text.startswith(" w0 w1 w2")
        assert continued.text == stopped.text + " and the end."
        assert continued.message_id == stopped.message_id  # the same message goes on
        sent = _sent(srv)
        assert sent[-1] == {"role": "assistant", "content": stopped.text}
        conv = service.conversation(ME, cid)
        assert len(conv["all_messages"]) == 2 and not conv["messages"][-1]["continuable"]
        with pytest.raises(ServiceError, match="can be continued"):
            _run(_last(service.continue_answer(ME, cid)))


def test_a_stop_cancels_the_request_even_while_the_model_says_nothing(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=["first", " never"], delay=30)
        service = _service(srv, tmp_path)

        async def work():
            async for u in service.send(ME, "hello"):
                if u.text == "first":
                    service.stop(ME, u.conversation_id)
            return u

        last = _run(asyncio.wait_for(work(), 10))
        assert (last.done, last.text, last.notice) == (True, "first", "Stopped.")
        conv = service.conversation(ME, last.conversation_id)
        assert conv["messages"][-1]["continuable"] and not conv["writing"]


def test_a_second_reader_follows_the_answer_and_can_stop_it(tmp_path):
    tokens = [f" w{i}" for i in range(60)]
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=tokens, delay=0.05)
        service = _service(srv, tmp_path)

        async def work():
            first = service.send(ME, "hello")
            u = await anext(first)
            while not u.text:
                u = await anext(first)
            cid = u.conversation_id
            with pytest.raises(ServiceError, match="conversation not found"):
                await _last(service.follow(OTHER, cid))  # someone else sees nothing
            seen, stopped = [], False
            async for f in service.follow(ME, cid):  # a second tab
                seen.append(f)
                if len(f.text.split()) >= 5 and not stopped:
                    stopped = service.stop(ME, cid)
            assert stopped
            mine = await _last(first)
            return seen, mine

        seen, mine = _run(work())
        assert seen[-1].done and seen[-1].notice == "Stopped."
        assert mine.text == seen[-1].text and len(mine.text.split()) < len(tokens)
        conv = service.conversation(ME, mine.conversation_id)
        assert conv["messages"][-1]["content"] == mine.text


def test_a_conversation_shows_its_answer_as_far_as_it_has_got(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=[f" w{i}" for i in range(40)], delay=0.05)
        service = _service(srv, tmp_path)

        async def work():
            async for u in service.send(ME, "hello"):
                if u.stored and len(u.text.split()) >= 4:
                    conv = await asyncio.to_thread(service.conversation, ME, u.conversation_id)
                    service.stop(ME, u.conversation_id)
                    return u, conv

        u, conv = _run(work())
        assert conv["writing"] and conv["messages"][-1]["id"] == u.message_id
        assert conv["messages"][-1]["content"].startswith(u.text)
        assert conv["messages"][-1]["notice"] == ""  # not "the server stopped"


def test_answers_in_progress_are_bounded_per_person_and_in_all(tmp_path):
    with ScriptedServer() as srv:
        srv.script("tokens", tokens=[f" w{i}" for i in range(100)], delay=0.05)
        service = _service(srv, tmp_path, answer_limits=(1, 2))

        async def work():
            mine = service.send(ME, "one")
            a = await anext(mine)
            with pytest.raises(ServiceError, match="already have 1 answer being written"):
                await _last(service.send(ME, "two"))
            theirs = service.send(OTHER, "three")
            b = await anext(theirs)
            third = Owner(id="anon:" + "8" * 40, kind="anonymous")
            with pytest.raises(ServiceError, match="as many answers as it can"):
                await _last(service.send(third, "four"))
            assert service.stop(ME, a.conversation_id) and service.stop(OTHER, b.conversation_id)
            return await _last(mine), await _last(theirs)

        mine, theirs = _run(work())
        assert mine.notice == theirs.notice == "Stopped."
        # Refused messages are not stored: only the answered ones are there.
        assert len(service.conversations(ME)) == len(service.conversations(OTHER)) == 1


def test_a_message_id_of_another_conversation_is_not_found(tmp_path):
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        a = _run(_last(service.send(ME, "in a")))
        b = _run(_last(service.send(ME, "in b")))
        for attempt in (
            lambda: _last(service.edit(ME, a.conversation_id, b.message_id, "x")),
            lambda: _last(service.retry(ME, a.conversation_id, b.message_id)),
            lambda: _last(service.continue_answer(ME, a.conversation_id, b.message_id)),
        ):
            with pytest.raises(ServiceError, match="message not found"):
                _run(attempt())
        with pytest.raises(ServiceError, match="message not found"):
            service.switch_branch(ME, a.conversation_id, b.message_id)
        with pytest.raises(ServiceError, match="conversation not found"):
            service.switch_branch(OTHER, a.conversation_id, a.message_id)


@pytest.mark.parametrize("form", ["field", "think"])
def test_reasoning_is_kept_apart_and_never_sent_back_to_the_model(tmp_path, form):
    with ScriptedServer() as srv:
        service = _service(srv, tmp_path)
        srv.script(
            "tokens", tokens=["Four", "."], reasoning=["Two and", " two."], reasoning_form=form
        )
        first = _run(_last(service.send(ME, "2+2?")))
        srv.script("tokens", tokens=["Yes."])
        _run(_last(service.send(ME, "Sure?", first.conversation_id)))
        conv = service.conversation(ME, first.conversation_id)
    assert (first.text, first.reasoning.strip()) == ("Four.", "Two and two.")
    answer = conv["messages"][1]
    assert (answer["content"], answer["reasoning"].strip()) == ("Four.", "Two and two.")
    sent = _sent(srv)
    assert {"role": "assistant", "content": "Four."} in sent
    assert not any("two." in m["content"].lower() for m in sent)


def test_a_huge_listing_limit_lists_everything(tmp_path):
    """Found by the fuzz test: a limit past sys.maxsize broke the listing with a traceback."""
    with ScriptedServer() as srv:
        srv.script("echo")
        service = _service(srv, tmp_path)
        _run(_last(service.send(ME, "one")))
        assert [c["title"] for c in service.conversations(ME, 2**63)] == ["one"]
