"""mosquitto_pub, a real third-party MQTT peer, built from the same PKI.

The PSK never goes on a command line (where `ps` shows it to every user, and pytest prints it in
a failing CompletedProcess or TimeoutExpired): mosquitto_pub 2.0 reads default options from
`$XDG_CONFIG_HOME/mosquitto_pub`, one `-option value` per line, before its arguments.
`run_mosquitto_pub` writes `--psk` and `--psk-identity` there, in a private temporary
directory (0700, the file 0600) that is removed afterwards, and points the child's
XDG_CONFIG_HOME at it (verified with mosquitto_pub 2.0.11: it reads the file and speaks TLS-PSK
with that key). That also keeps a user's own ~/.config/mosquitto_pub out of the run. What it
returns or raises never contains the key (argv and output are redacted too, defensively).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rig.errors import RigError
from rig.host.tls import ClientCredentials
from rig.local.user_tmp import remove_secret_dir, secret_dir, write_secret

OPTIONS_FILE = "mosquitto_pub"  # the name mosquitto_pub looks for in $XDG_CONFIG_HOME
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Target:
    host: str
    port: int


class MosquittoPubError(RigError):
    """mosquitto_pub failed or did not finish; the message never contains a secret."""


class MosquittoPubTimeout(MosquittoPubError):
    pass


@dataclass(frozen=True)
class PubResult:
    """One finished mosquitto_pub run: what ran and what it printed, redacted of the key."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> PubResult:
        """Raise MosquittoPubError unless mosquitto_pub exited with 0."""
        if self.returncode != 0:
            raise MosquittoPubError(
                f"mosquitto_pub exited with code {self.returncode}: "
                f"{self.stderr.strip() or '(no output)'} (ran: {shlex.join(self.argv)})")
        return self


def mosquitto_pub_argv(
    target: Target,
    creds: ClientCredentials,
    topic: str,
    message: str,
    *,
    client_id: str = "hil-mosquitto-pub",
    qos: int = 1,
) -> list[str]:
    """argv for `mosquitto_pub` in creds.mode, without any secret: in psk mode the key and the
    identity come from the options file (`options_dir`)."""
    argv = ["mosquitto_pub", "-h", target.host, "-p", str(target.port), "-i", client_id,
            "-t", topic, "-m", message, "-q", str(qos)]
    if creds.mode != "psk":
        argv += ["--cafile", str(creds.cafile)]
        if creds.certfile and creds.keyfile:
            argv += ["--cert", str(creds.certfile), "--key", str(creds.keyfile)]
        if not creds.check_hostname:
            argv += ["--insecure"]
    # psk: mosquitto_pub has no maximum TLS version, so against Mosquitto it speaks TLS 1.3 PSK.
    return argv


def _options_text(creds: ClientCredentials) -> str:
    """The options file's text for creds (empty outside psk mode). Kept in this function's
    frame only, so no traceback that passes through the callers shows the key."""
    if creds.mode != "psk":
        return ""
    if not creds.psk_hex or not creds.psk_identity:
        raise ValueError("psk mode needs a PSK identity and key")
    for name, value in (("PSK", creds.psk_hex), ("PSK identity", creds.psk_identity)):
        if any(c in value for c in "\r\n\0") or value != value.strip():
            raise ValueError(f"the {name} cannot go into mosquitto_pub's options file: it has "
                             "surrounding blanks or a line break")
    return f"--psk {creds.psk_hex}\n--psk-identity {creds.psk_identity}\n"


@contextlib.contextmanager
def options_dir(creds: ClientCredentials) -> Iterator[Path]:
    """A private directory holding mosquitto_pub's options file for creds (the PSK and its
    identity in psk mode; empty otherwise), for the block; run mosquitto_pub with
    XDG_CONFIG_HOME set to it (`child_env`). The directory is 0700, the file 0600, and both are
    removed when the block ends, also on an exception."""
    path = secret_dir("mosquitto-pub")  # 0700; a killed run's is swept by the next one
    try:
        write_secret(path / OPTIONS_FILE, _options_text(creds))
        yield path
    finally:
        remove_secret_dir(path)


def child_env(config_home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default os.environ) with XDG_CONFIG_HOME pointing at an options_dir."""
    return {**(os.environ if env is None else env), "XDG_CONFIG_HOME": str(config_home)}


def redact(text: str, creds: ClientCredentials) -> str:
    """`text` with the key (in any letter case) replaced by <redacted>."""
    key = creds.psk_hex
    if not key:
        return text
    lowered, needle = text.lower(), key.lower()
    out: list[str] = []
    start = 0
    while (i := lowered.find(needle, start)) >= 0:
        out += [text[start:i], REDACTED]
        start = i + len(needle)
    return "".join([*out, text[start:]])


def run_mosquitto_pub(
    target: Target,
    creds: ClientCredentials,
    topic: str,
    message: str,
    *,
    client_id: str = "hil-mosquitto-pub",
    qos: int = 1,
    timeout: float = 30.0,
    check: bool = False,
) -> PubResult:
    """Run mosquitto_pub once with the secret options in a private options file (see the
    module's docstring). MosquittoPubTimeout when it does not finish within `timeout` (it is
    killed); with `check`, MosquittoPubError when it exits non-zero."""
    argv = mosquitto_pub_argv(target, creds, topic, message, client_id=client_id, qos=qos)
    with options_dir(creds) as home:
        code, out, err = _run(argv, home, timeout, creds)
    shown = tuple(redact(a, creds) for a in argv)  # the key has no business there; even so
    if code is None:
        # raised outside any except block: no chained TimeoutExpired in the report
        raise MosquittoPubTimeout(
            f"mosquitto_pub did not finish within {timeout:g} s and was killed; it said: "
            f"{(err + out).strip() or '(nothing)'} (ran: {shlex.join(shown)})")
    result = PubResult(shown, code, out, err)
    return result.check() if check else result


def _run(argv: list[str], config_home: Path, timeout: float, creds: ClientCredentials,
         ) -> tuple[int | None, str, str]:
    """(exit code or None when it timed out and was killed, stdout, stderr), redacted."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=child_env(config_home), stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        return None, redact(_text(exc.stdout), creds), redact(_text(exc.stderr), creds)
    return proc.returncode, redact(proc.stdout, creds), redact(proc.stderr, creds)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def shell_line(target: Target, creds: ClientCredentials, topic: str, message: str, *,
               psk_file: Path | None = None, client_id: str = "hil-mosquitto-pub",
               qos: int = 1) -> str:
    """A POSIX shell line a user can paste to publish like run_mosquitto_pub. In psk mode the
    key is read from `psk_file` by `$(cat ...)` into the builtin printf, which writes the
    options file in a fresh `mktemp -d` directory (removed on exit): the key appears in no
    process's arguments and is not printed."""
    line = shlex.join(mosquitto_pub_argv(target, creds, topic, message, client_id=client_id,
                                         qos=qos))
    if creds.mode != "psk":
        return line
    if psk_file is None or not creds.psk_identity:
        raise ValueError("psk mode needs the PSK's file and identity")
    options = (f"printf '%s\\n' \"--psk $(cat {shlex.quote(str(psk_file))})\" "
               f"{shlex.quote('--psk-identity ' + creds.psk_identity)}")
    return (f"(umask 077 && d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && "
            f"{options} > \"$d/{OPTIONS_FILE}\" && XDG_CONFIG_HOME=\"$d\" {line})")
