"""`tests/scripted_server.py` in a process of its own, so its CPU is nobody's measurement.

    python -m bench.scripted '{"default": ["tokens", {"tokens": ["a", "b"], "delay": 0.01}]}'

prints `ready <port>` and serves until its standard input closes. The JSON may also hold
"models": {model: [scenario, options]}.

One change to how it serves, so that the harness does not charge its own delays to the app
under test: TCP_NODELAY on its connections. ScriptedServer binds a socket made without
IPPROTO_TCP, so asyncio never sets TCP_NODELAY on what it accepts, and Nagle holds each
small SSE write until the client's delayed ACK (~40 ms). Accepted sockets inherit the
listener's. (Its tokens already leave on a schedule, start + n × delay.)
"""

from __future__ import annotations

import json
import socket
import sys

from bench.common import ScriptedServer


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    with ScriptedServer() as server:
        server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if "default" in config:
            scenario, options = config["default"]
            server.script(scenario, **options)
        for model, (scenario, options) in config.get("models", {}).items():
            server.script_model(model, scenario, **options)
        print(f"ready {server.port}", flush=True)
        sys.stdin.read()  # returns at EOF: the benchmark is done with us


if __name__ == "__main__":
    main()
