"""Whose Hugging Face token a request to Inference Providers (`hf` endpoints) carries.

Where the Space asks for the `inference-api` OAuth scope, a signed-in person's requests go
out with their own token, on their own quota and bill (as huggingface/chat-ui does), and so
do those of an API caller who sends their own token. Anyone else's go out with the server's
`HF_TOKEN`; an anonymous person's only where the deployer allows it
(`PARLOR_ANONYMOUS_USES_SERVER_TOKEN`). A person's token rides on their `Owner`, in memory,
with one request and its answer: it is never stored, logged, nor sent to any other server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .identity import Owner

SCOPE = "inference-api"  # the OAuth scope that lets an app call Inference Providers for someone
SIGN_IN = "sign in to use this model"
NO_SERVER_TOKEN = "this server has no Hugging Face token (HF_TOKEN)"
MEMBERS_ONLY = "this server keeps it for signed-in people"
NOT_HF = "this server's HF_TOKEN is not a Hugging Face token (hf_...)"
OWN_TOKEN_REFUSED = (
    "Hugging Face refused your token for this model (HTTP {status}). Sign out and in again, "
    "or check your token's permissions for Inference Providers."
)
NO_CREDITS = (
    "Your Hugging Face account has no Inference Providers credits left (HTTP 402). "
    "See huggingface.co/settings/billing, or choose another model."
)


def asks_for_inference(scopes: str) -> bool:
    """Whether OAuth scopes (space-separated, as in `OAUTH_SCOPES`) include `inference-api`."""
    return SCOPE in scopes.split()


def token_of_session(oauth_info: Mapping[str, Any] | None) -> str:
    """The signed-in person's access token, where they granted `inference-api`; else ""."""
    info = oauth_info or {}
    token = str(info.get("access_token") or "")
    granted = asks_for_inference(str(info.get("scope") or ""))
    return token if granted and token.startswith("hf_") else ""


def with_token(owner: Owner, token: str) -> Owner:
    """`owner` carrying their own HF token (an "hf_..." one only: any other key would be
    sent by huggingface_hub straight to a provider)."""
    return dataclasses.replace(owner, hf_token=token) if token.startswith("hf_") else owner


@dataclass(frozen=True)
class HFAccess:
    """The tokens `hf` endpoints may carry, and where they are sent.

    `router_url`: Inference Providers' router, for a proxy in front of it (or the tests'
    scripted server); "" leaves the routing to huggingface_hub (router.huggingface.co).
    """

    server_token: str = field(default="", repr=False)
    own_tokens: bool = False  # people's own tokens pay (the Space asks for inference-api)
    anonymous_server_token: bool = True
    sign_in: bool = False  # people can sign in here (Gradio's OAuth is on)
    router_url: str = ""

    def token_for(self, owner: Owner | None) -> tuple[str, str]:
        """(the token, "") for a request on behalf of `owner`, or ("", why none may go).
        None asks for the server's own view: its token, as before accounts had any."""
        if owner is not None and self.own_tokens and owner.hf_token:
            return owner.hf_token, ""
        anonymous = owner is not None and owner.kind == "anonymous"
        if anonymous and not self.anonymous_server_token:
            return "", SIGN_IN if self.sign_in else MEMBERS_ONLY
        if not self.server_token:
            return "", SIGN_IN if anonymous and self.own_tokens else NO_SERVER_TOKEN
        if not self.server_token.startswith("hf_"):
            return "", NOT_HF  # huggingface_hub would send it straight to the provider
        return self.server_token, ""

    def is_own(self, owner: Owner | None) -> bool:
        """Whether a request on behalf of `owner` carries their own token."""
        return owner is not None and self.own_tokens and bool(owner.hf_token)


def own_token_message(status: int) -> str:
    """What a person is told when Hugging Face turns down their own token ("" otherwise)."""
    if status == 402:
        return NO_CREDITS
    if status in (401, 403):
        return OWN_TOKEN_REFUSED.format(status=status)
    return ""
