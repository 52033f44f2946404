"""Deployer command: export, per model, the conversations people chose to share.

    python -m chat.sharing --out shared/

writes one JSONL file per model (`<model id with / as __>.jsonl`), one line per conversation
whose owner consented while sharing was switched on (`PARLOR_DATA_SHARING=true`) and still
shares (their setting is on now), holding only the messages written since the consent, and
nothing that identifies the person.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from . import tree
from .settings import Settings
from .store import Store, open_store

SETTING = "share_with_model_authors"  # a person's setting: on while they share

# A rating travels with its answer: it is what model authors most want to see.
SHARED_FIELDS = ("id", "parent_id", "role", "content", "created_at", "feedback")


def consented(history: Store) -> dict[str, list[dict]]:
    """Per model id, the shared part of every consented conversation of the people whose
    setting says they share now (a conversation's consent alone is not enough: one moved
    to an account at sign-in may carry a consent the account's setting overrules)."""
    per_model: dict[str, list[dict]] = defaultdict(list)
    for key in history.owners():
        if history.settings_by_key(key).get(SETTING) is not True:
            continue
        for conv in history.conversations_by_key(key):
            consent = conv.get("consent")
            if not consent:
                continue
            # Every branch, each message with its parent: an edit or another answer is told
            # apart from the next turn (the ids are random, and name no one).
            messages = [
                {k: m.get(k) for k in SHARED_FIELDS}
                for m in tree.as_tree(conv["messages"])
                if m["created_at"] >= consent["at"] and m["content"]
            ]
            if messages:
                per_model[consent["model"]].append(
                    {"model": consent["model"], "consented_at": consent["at"], "messages": messages}
                )
    return per_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSONL files")
    args = parser.parse_args(argv)
    settings = Settings()
    per_model = consented(open_store(settings))
    args.out.mkdir(parents=True, exist_ok=True)
    for model_id, rows in per_model.items():
        path = args.out / (model_id.replace("/", "__") + ".jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        print(f"{path}: {len(rows)} conversation(s)")
    if not per_model:
        print("no consented conversations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
