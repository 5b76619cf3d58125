"""The leak check the product's tests (and the rig's own) use: it fails naming WHERE a secret
showed up, never showing the secret itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SECRET_SHOWN = "<secret>"


def _needles(secret: bytes | str) -> list[str]:
    """What counts as the secret showing: the whole value and, for a PEM block, each line of
    its body (a key quoted line by line leaks as surely as the whole of it); lower case."""
    text = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
    needles = [text.strip()]
    if "-----BEGIN" in text:
        needles += [ln.strip() for ln in text.splitlines()
                    if len(ln.strip()) >= 16 and not ln.startswith("-----")]
    return [n.lower() for n in needles if n]


def _hide(text: str, needles: list[str]) -> str:
    lowered = text.lower()
    for needle in sorted(needles, key=len, reverse=True):
        while (i := lowered.find(needle)) >= 0:
            text = text[:i] + SECRET_SHOWN + text[i + len(needle):]
            lowered = text.lower()
    return text


def assert_no_secret(secret: bytes | str, what: str,
                     places: Mapping[str, str | Sequence[str]]) -> None:
    """Fail when `secret` (named `what`, e.g. the setting's key) shows in any of `places`: a
    name -> one text, or a name -> lines (a transcript). The failure names each place, and for
    lines the 1-based line number with the line as it reads with the secret replaced by
    <secret>; it never contains the secret (nor does the traceback: this frame is hidden)."""
    __tracebackhide__ = True
    needles = _needles(secret)
    found: list[str] = []
    for place, text in places.items():
        lines = [text] if isinstance(text, str) else list(text)
        for number, line in enumerate(lines, 1):
            if any(n in line.lower() for n in needles):
                where = place if isinstance(text, str) else f"{place} line {number}"
                shown = _hide(line, needles)
                at = max(0, shown.find(SECRET_SHOWN) - 80)
                found.append(f"{where}: {'...' if at else ''}{shown[at:at + 200]!r}")
    if found:
        raise AssertionError(f"{what} leaked (value not shown) in:\n  " + "\n  ".join(found))
