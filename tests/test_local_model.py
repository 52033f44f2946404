"""The embedded model's process: what it may see of the app's environment."""

from __future__ import annotations

from chat.local_model import child_environment


def test_child_environment_keeps_what_python_and_llama_cpp_need_and_no_secret():
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/opt/lib",
        "VIRTUAL_ENV": "/venv",
        "OMP_NUM_THREADS": "1",
        "LLAMA_CPP_LIB_PATH": "/opt/llama",
        "HF_TOKEN": "hf_secret",
        "PARLOR_SECRET": "signing",
        "OAUTH_CLIENT_SECRET": "oauth",
        "TEAM_KEY": "team",
        "LLAMA_API_KEY": "looks-like-llama-but-is-a-key",
        "PYTHON_KEYRING_PASSWORD": "hidden",
    }
    child = child_environment(environ, "local-token")
    assert child == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/opt/lib",
        "VIRTUAL_ENV": "/venv",
        "OMP_NUM_THREADS": "1",
        "LLAMA_CPP_LIB_PATH": "/opt/llama",
        "PARLOR_LOCAL_TOKEN": "local-token",
    }
