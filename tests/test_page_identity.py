"""Who a page is when its browser keeps no cookie (a frame where third-party cookies are
blocked): the person named by a secret the server handed that page, never by Gradio's
session hash, which the browser makes up and sends in URLs for anyone to see."""

from __future__ import annotations

import json

import httpx
from gradio_events import PageEvents
from test_browser_pages import FRAME, Site


def test_a_session_hash_grants_nothing(people, app):
    site = Site()
    try:
        victim = people(site.embedding(app.url + "?embed=1"), frame=FRAME).open()
        secret = "Plans for the heron-ledger-512 surprise."
        with victim.page.expect_request(lambda r: "/queue/join" in r.url) as joined:
            first = victim.chat(secret)
        session_hash = joined.value.post_data_json["session_hash"]
        # The page keeps its person without a cookie: the conversation goes on.
        second = victim.chat("And a second thought?")
        assert victim.messages() == [
            ("user", secret),
            ("bot", first),
            ("user", "And a second thought?"),
            ("bot", second),
        ]
        assert victim.context.cookies() == [], "the frame kept no cookie"

        # Someone else sends the page's own event with its session hash, no cookie: the
        # sidebar they get back is their own, empty one (the hash once made them the page's
        # person), also when they bring a valid page token of their own.
        events = PageEvents(app.url)
        more = events.event("more-conversations", "click")
        assert "heron-ledger-512" not in stranger_listing(events, more, session_hash, {}), (
            "a session hash named its person"
        )
        own_token = httpx.get(app.url + "session/page").json()["token"]
        assert "heron-ledger-512" not in stranger_listing(
            events, more, session_hash, {1: own_token}
        )

        # The page itself is still its person.
        third = victim.chat("One more?")
        assert len(victim.messages()) == 6 and victim.messages()[-1] == ("bot", third)
    finally:
        site.close()


def stranger_listing(events: PageEvents, more: dict, session_hash: str, data: dict) -> str:
    """What "Show older conversations" lists for someone with no cookie who names the
    session hash (and sends `data` as the event's inputs)."""
    with httpx.Client(timeout=60) as stranger:
        done = events.run(stranger, more, session_hash, data)
    assert done["success"], done
    listing = done["output"]["data"][0]  # the sidebar's list (chat/ui_sidebar.py)
    assert json.loads(listing)["rows"] == [], listing  # their own: empty
    return listing


def test_a_pages_event_stream_is_its_own(people, app):
    """Gradio streams a session's events to whoever asks `/queue/data` with its hash, and
    the page sends that hash in URLs. Once the page has used it with its cookie, someone
    else naming it (with no cookie, or a cookie of their own) is refused, and the page goes
    on chatting."""
    me = people(app.url).open()
    with me.page.expect_request(lambda r: "/queue/join" in r.url) as joined:
        me.chat("A secret about the heron-ledger.")
    session_hash = joined.value.post_data_json["session_hash"]
    stream = app.url + "gradio_api/queue/data"
    for with_a_cookie in (False, True):
        with httpx.Client(timeout=10) as stranger:
            if with_a_cookie:
                stranger.get(app.url)  # a valid cookie, of their own
            with stranger.stream("GET", stream, params={"session_hash": session_hash}) as r:
                assert r.status_code == 403, "someone else read the page's event stream"
            beat = stranger.get(app.url + f"gradio_api/heartbeat/{session_hash}")
            assert beat.status_code == 403
    answer = me.chat("And another?")
    assert me.messages()[-1] == ("bot", answer)
