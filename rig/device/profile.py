"""Device profiles: how the rig drives a board's firmware, declared in TOML rather than coded.

A profile says how settings reach the firmware (`settings`), whether the rig sets its clock
before a connection, whether it serves HTTPS as the hil-agent does, and what it prints: its
connected, ciphersuite, handshake, published and refusal lines, as regular expressions searched
in the text of each log line. Profiles come from three places, checked the same way
(rig.config's [profiles.<name>] tables: an unknown key or a wrong type names the file and the
key):

- built in: rig/device/profiles/*.toml (the hil-agent, which a board without `profile` runs);
- hil.toml's [rig] profiles_file, a TOML file of [profiles.<name>] tables;
- hil.toml's own [profiles.<name>] tables.

A name is defined once: a profile that reuses another's name is an error naming both places.
Each expression must compile and carry the named groups the rig reads (`suite`, `ms`, `topic`
and `message`, `reason`); a board's `profile` must name a profile. Two ways in exist so far:
`console`, the hil-agent's line console (firmware/README.md), and `mongoose-rpc`, Mongoose OS
RPC frames on the UART and a reboot after which the firmware connects by itself
(rig/device/mongoose.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rig.config import Board, ConfigError, HilConfig, ProfileSection, load_profiles
from rig.device import nvs_image

DEFAULT = "hil-agent"
# each line's named groups the rig reads (a group the expression lacks is an error)
GROUPS = {"connected": (), "on_connect": (), "ciphersuite": ("suite",), "handshake": ("ms",),
          "published": ("topic", "message"), "refused": ("reason",),
          "refused_setting": ("reason",)}
REQUIRED = ("connected", "refused")
# settings = "mongoose-rpc": the settings that may go up as files (certificates and keys)
FILE_SETTINGS = ("mqtt.ssl_ca_cert", "mqtt.ssl_cert", "mqtt.ssl_key")


class ProfileError(ConfigError):
    """A profile that cannot be used, or a board that names none: like a broken hil.toml,
    nothing starts (exit code 2)."""


@dataclass(frozen=True)
class Lines:
    """A profile's lines, compiled; None where the firmware prints no such line."""

    connected: re.Pattern[str]
    on_connect: tuple[re.Pattern[str], ...]
    ciphersuite: re.Pattern[str] | None
    handshake: re.Pattern[str] | None
    published: re.Pattern[str] | None
    refused: tuple[re.Pattern[str], ...]
    refused_setting: re.Pattern[str] | None = None  # a setting refused at boot


@dataclass(frozen=True)
class Profile:
    name: str
    source: str  # the file that defines it
    description: str
    settings: str
    clock: bool
    https: bool
    lines: Lines
    reconnect: bool = False  # the resilience cells run on it (rig/cases/test_resilience.py)
    keylog: bool = False  # it exports TLS secrets on its console (`tls keylog`, captures)
    rpc_files: tuple[str, ...] = ()  # mongoose-rpc: settings that go up as files
    rpc_publish: str = ""  # the RPC method that publishes (a firmware that connects at boot)
    nvs_csv: str = ""  # nvs-image: the partition's CSV template (rig/device/nvs_image.py)
    nvs_size: int = 0  # nvs-image: the partition's size

    @property
    def connects_at_boot(self) -> bool:
        """Does the firmware connect by itself after a reboot with its settings (no connect
        command; Mongoose OS's mqtt.enable)?"""
        return self.settings != "console"

    def __str__(self) -> str:
        return f"profile {self.name!r} ({self.source})"

    def refusal(self, texts: list[str]) -> str:
        """The reason of the last line among `texts` that says the connection was refused
        (a `refused` line's group `reason`), or ''."""
        for text in reversed(texts):
            for rx in self.lines.refused:
                m = rx.search(text)
                if m:
                    return m.group("reason")
        return ""


def _builtin_files() -> list[Path]:
    folder = resources.files("rig.device") / "profiles"
    return sorted(Path(str(f)) for f in folder.iterdir() if f.name.endswith(".toml"))


def _compile(pattern: str, groups: tuple[str, ...], where: str, src: str) -> re.Pattern[str]:
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ProfileError(src, where,
                           f"not a regular expression: {exc} in {pattern!r}") from None
    missing = [g for g in groups if g not in rx.groupindex]
    if missing:
        raise ProfileError(src, where, f"expected the named group(s) "
                           f"{', '.join(f'(?P<{g}>...)' for g in missing)} in {pattern!r}")
    return rx


def _lines(section: ProfileSection, key: str, src: str) -> Lines:
    raw = section.lines
    for name in REQUIRED:
        if not getattr(raw, name):
            raise ProfileError(src, f"{key}.lines.{name}", "missing; expected a regular "
                               "expression for the line the firmware prints")

    def one(name: str) -> re.Pattern[str] | None:
        value: str = getattr(raw, name)
        return _compile(value, GROUPS[name], f"{key}.lines.{name}", src) if value else None

    def many(name: str) -> tuple[re.Pattern[str], ...]:
        values: list[str] = getattr(raw, name)
        return tuple(_compile(v, GROUPS[name], f"{key}.lines.{name}[{i}]", src)
                     for i, v in enumerate(values))

    connected = one("connected")
    assert connected is not None
    return Lines(connected=connected, on_connect=many("on_connect"),
                 ciphersuite=one("ciphersuite"), handshake=one("handshake"),
                 published=one("published"), refused=many("refused"),
                 refused_setting=one("refused_setting"))


def _profile(name: str, section: ProfileSection, src: str) -> Profile:
    key = f"profiles.{name}"
    for i, setting in enumerate(section.rpc_files):
        if setting not in FILE_SETTINGS:
            raise ProfileError(src, f"{key}.rpc_files[{i}]", f"expected one of "
                               f"{', '.join(FILE_SETTINGS)} (a certificate or key), got "
                               f"{setting!r}")
    if section.settings == "mongoose-rpc" and not section.rpc_publish:
        raise ProfileError(src, f"{key}.rpc_publish", "missing; expected the RPC method that "
                           "publishes (e.g. MQTT.Pub): the mode cells publish through it")
    if section.settings == "nvs-image":
        _check_nvs(section, key, src, name)
        if not section.lines.refused_setting:
            raise ProfileError(src, f"{key}.lines.refused_setting", "missing; expected the line "
                               "the firmware prints when it refuses a setting it reads at boot, "
                               "group (?P<reason>...): the negative cells wait for it")
    if section.keylog and section.settings != "console":
        raise ProfileError(src, f"{key}.keylog", "the rig asks for TLS secrets with a console "
                           "command (`tls keylog`): keylog = true needs settings = \"console\"")
    if section.reconnect and section.settings == "nvs-image":
        raise ProfileError(src, f"{key}.reconnect", "the resilience cells drive a firmware over "
                           "its console or Mongoose OS RPC so far: reconnect = true needs "
                           "settings = \"console\" or \"mongoose-rpc\"")
    return Profile(name=name, source=src, description=section.description,
                   settings=section.settings, clock=section.clock, https=section.https,
                   reconnect=section.reconnect, keylog=section.keylog,
                   lines=_lines(section, key, src), rpc_files=tuple(section.rpc_files),
                   rpc_publish=section.rpc_publish if section.settings != "console" else "",
                   nvs_csv=section.nvs_csv, nvs_size=section.nvs_size)


def _check_nvs(section: ProfileSection, key: str, src: str, name: str) -> None:
    """An nvs-image profile's template and size, as esp-idf-nvs-partition-gen will need
    them (rig/device/nvs_image.py)."""
    if not section.nvs_csv:
        raise ProfileError(src, f"{key}.nvs_csv", "missing; expected the NVS partition's CSV "
                           "template (key,type,encoding,value)")
    try:
        nvs_image.rows(section.nvs_csv, name)
    except nvs_image.NvsImageError as exc:
        raise ProfileError(src, f"{key}.nvs_csv", str(exc)) from None
    if section.nvs_size <= 0 or section.nvs_size % 4096:
        raise ProfileError(src, f"{key}.nvs_size", f"expected a positive multiple of 4096 "
                           f"(the partition's size), got {section.nvs_size}")


def profiles(config: HilConfig) -> dict[str, Profile]:
    """Every profile this hil.toml can name: the built-in ones, its profiles_file's, its own."""
    sources: list[tuple[str, dict[str, ProfileSection]]] = [
        (str(path), load_profiles(path)) for path in _builtin_files()]
    if config.rig.profiles_file:
        path = config.path(config.rig.profiles_file)
        sources.append((str(path), load_profiles(path)))
    sources.append((str(config.source), config.profiles))
    out: dict[str, Profile] = {}
    for src, sections in sources:
        for name, section in sections.items():
            if name in out:
                raise ProfileError(src, f"profiles.{name}", f"profile {name!r} is already "
                                   f"defined in {out[name].source}: give this one another name")
            out[name] = _profile(name, section, src)
    return out


def check(config: HilConfig) -> dict[str, Profile]:
    """The profiles, and every board's among them (ProfileError naming the board if not)."""
    found = profiles(config)
    for i, board in enumerate(config.boards):
        if board.profile not in found:
            raise ProfileError(str(config.source), f"boards[{i}].profile",
                               f"no profile named {board.profile!r}; known: "
                               f"{', '.join(sorted(found))}")
    return found


def profile_of(config: HilConfig, board: Board) -> Profile:
    """The board's profile (hil.toml `profile`, default hil-agent)."""
    return check(config)[board.profile]
