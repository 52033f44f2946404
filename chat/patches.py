"""Where Parlor replaces a library's private internals, and when it does not.

Each patch was written and measured against exact versions of the libraries it reaches into
(`exact_version`): it applies on those only, since another version may have moved what it
replaces (every event would fail) or changed what it relies on (it would silently do
nothing). Start-up names in one line the patches left off and why. `docs/upstream.md` says
what each replaces and the upstream change that would make it unnecessary.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger("parlor.patches")

Versions = Mapping[str, tuple[str, ...]]  # distribution name -> the versions it was written for


def exact_version(**libraries: str | tuple[str, ...]) -> Versions:
    """The versions a patch was written for, by distribution: `exact_version(gradio="6.31.0")`."""
    return {name: (v,) if isinstance(v, str) else tuple(v) for name, v in libraries.items()}


@dataclass(frozen=True)
class Patch:
    name: str
    apply: Callable[[], None]
    written_for: Versions
    upstream: str  # the upstream change that would make it unnecessary, in a line

    def mismatch(self) -> str:
        """Why it cannot apply here ("gradio 6.32.0, written for 6.31.0"), or ""."""
        for library, versions in self.written_for.items():
            found = installed(library)
            if found not in versions:
                return f"{library} {found}, written for {' or '.join(versions)}"
        return ""


def installed(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def apply(patches: Iterable[Patch], *, enabled: bool) -> list[Patch]:
    """Apply each patch whose libraries are at the versions it was written for; log one line
    naming the others and why (all of them when `enabled` is false: PARLOR_PATCHES=off).
    Returns the patches applied."""
    patches = list(patches)
    if not enabled:
        names = ", ".join(p.name for p in patches)
        log.warning("library patches off (PARLOR_PATCHES=off): %s", names)
        return []
    off: dict[str, list[str]] = {}  # reason -> names
    applied = []
    for patch in patches:
        if reason := patch.mismatch():
            off.setdefault(reason, []).append(patch.name)
        else:
            patch.apply()
            applied.append(patch)
    if off:
        reasons = "; ".join(f"{', '.join(names)} ({why})" for why, names in off.items())
        log.warning("library patches off, not written for the versions installed: %s", reasons)
    return applied
