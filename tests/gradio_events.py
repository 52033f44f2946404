"""The chat page's own events sent by hand, as a browser's Gradio client sends them: a POST
to /gradio_api/queue/join naming the event and a session hash, then the session's stream of
results from /gradio_api/queue/data. For tests of what someone who is not that browser (and
holds none of its cookies or secrets) can do with a session hash alone."""

from __future__ import annotations

import json

import httpx


class PageEvents:
    """The events of the page served at `url`, found in its config by the element that
    triggers them (`elem_id`) and the trigger ("click", "submit", ...)."""

    def __init__(self, url: str) -> None:
        self.url = url
        config = httpx.get(url + "config", timeout=30).json()
        self._elem_ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
        self._dependencies = config["dependencies"]

    def event(self, elem_id: str, trigger: str) -> dict:
        """The dependency that `trigger` of the element `elem_id` runs."""
        for dependency in self._dependencies:
            if any(
                self._elem_ids.get(target) == elem_id and kind == trigger
                for target, kind in dependency["targets"]
            ):
                return dependency
        raise LookupError(f"no {trigger} event on #{elem_id}")

    def run(
        self,
        http: httpx.Client,
        dependency: dict,
        session_hash: str,
        data: dict[int, object] | None = None,
    ) -> dict:
        """Run the event as session `session_hash` (every input None but those of `data`,
        by position) and return its `process_completed` message."""
        values = [None] * len(dependency["inputs"])
        for position, value in (data or {}).items():
            values[position] = value
        body = {
            "data": values,
            "fn_index": dependency["id"],
            "trigger_id": dependency["targets"][0][0],
            "session_hash": session_hash,
            "event_data": None,
        }
        joined = http.post(self.url + "gradio_api/queue/join", json=body)
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        stream = self.url + "gradio_api/queue/data"
        with http.stream("GET", stream, params={"session_hash": session_hash}) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[len("data:") :])
                if message.get("event_id") == event_id and message["msg"] == "process_completed":
                    return message
        raise AssertionError("the event's stream ended before it completed")
