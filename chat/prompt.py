"""Turn stored messages into what a model is sent, trimmed to fit its context window."""

from __future__ import annotations

# A cheap, conservative token estimate: most tokenizers average 3.5-4 characters a token in
# English; 3 keeps us on the safe side for code and other languages.
CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD = 8  # role markers and separators of chat templates


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD


def build_messages(
    history: list[dict],
    *,
    system_prompt: str,
    context_window: int,
    max_tokens: int,
) -> list[dict]:
    """The system prompt and the newest turns that fit, oldest dropped first.

    The system prompt and the last message are always kept (the last one cut from its start
    if it alone is too long), so a long chat never fails with "input too long".
    """
    turns = [
        {"role": m["role"], "content": m["content"]}
        for m in history
        if m["role"] in ("user", "assistant") and m["content"]
    ]
    # A failed answer leaves two user messages in a row; strict chat templates (Mistral,
    # Llama 2, Gemma) refuse that, so consecutive turns of one role are joined.
    merged: list[dict] = []
    for m in turns:
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1] = {**merged[-1], "content": merged[-1]["content"] + "\n\n" + m["content"]}
        else:
            merged.append(m)
    turns = merged
    budget = context_window - max_tokens
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    budget -= sum(estimate_tokens(m["content"]) for m in system)
    kept: list[dict] = []
    for message in reversed(turns):
        cost = estimate_tokens(message["content"])
        if cost > budget:
            if not kept:  # the newest message alone is too long: keep its end
                room = max(budget - MESSAGE_OVERHEAD, 1) * CHARS_PER_TOKEN
                kept.append({**message, "content": message["content"][-room:]})
            break
        kept.append(message)
        budget -= cost
    kept.reverse()
    # Chat templates want the first turn to be the user's.
    while kept and kept[0]["role"] == "assistant" and len(kept) > 1:
        kept.pop(0)
    return system + kept
