"""Fitting a conversation into a model's context window."""

from chat.prompt import build_messages, estimate_tokens


def _turns(n: int, size: int) -> list[dict]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"{i} " + "x" * size}
        for i in range(n)
    ]


def test_short_chat_is_sent_whole():
    history = _turns(4, 10)
    out = build_messages(history, system_prompt="Be kind.", context_window=4096, max_tokens=256)
    assert out[0] == {"role": "system", "content": "Be kind."}
    assert [m["content"] for m in out[1:]] == [m["content"] for m in history]


def test_long_chat_drops_oldest_turns_and_keeps_the_system_prompt():
    history = _turns(201, 300)  # ~100 tokens a turn, far over the window
    out = build_messages(history, system_prompt="Be kind.", context_window=2048, max_tokens=512)
    assert out[0]["role"] == "system"
    assert out[-1]["content"] == history[-1]["content"]
    assert out[1]["role"] == "user"
    assert sum(estimate_tokens(m["content"]) for m in out) <= 2048 - 512
    assert len(out) < len(history)


def test_a_single_huge_message_is_cut_not_refused():
    out = build_messages(
        [{"role": "user", "content": "a" * 100_000 + "END"}],
        system_prompt="",
        context_window=1024,
        max_tokens=256,
    )
    assert len(out) == 1 and out[0]["content"].endswith("END")
    assert estimate_tokens(out[0]["content"]) <= 1024 - 256


def test_turns_of_one_role_are_joined_for_strict_templates():
    history = [
        {"role": "user", "content": "first try"},
        {"role": "assistant", "content": ""},  # the answer failed before any text
        {"role": "user", "content": "second try"},
    ]
    out = build_messages(history, system_prompt="", context_window=4096, max_tokens=256)
    assert out == [{"role": "user", "content": "first try\n\nsecond try"}]
