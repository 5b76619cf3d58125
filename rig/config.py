"""hil.toml: the runner's inventory, loaded into typed dataclasses and validated.

Every problem is reported as one `ConfigError` naming the file, the key path
(`boards[1].kind`) and what was expected, so the CLI can exit 2 before it starts anything.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from rig.errors import UsageError

Mode = Literal["ca", "mutual", "psk"]
MODES: tuple[Mode, ...] = ("ca", "mutual", "psk")
# the device's HTTPS server: server-auth TLS, and client certificates required
# (rig/device/https_server.py)
WebMode = Literal["https", "https-mutual"]
WEB_MODES: tuple[WebMode, ...] = ("https", "https-mutual")
BoardKind = Literal["virtual", "esp32"]
# what a virtual board runs: "native" (Debian's mbedTLS 2.28, 64-bit, the host's clock) or "esp"
# (what the chip runs: mbedTLS 3.6 configured like ESP-IDF, 32-bit, no clock until set)
VirtualVariant = Literal["native", "esp"]
# how a device profile's settings reach the firmware (rig/device/profile.py)
ProfileSettings = Literal["console", "mongoose-rpc", "nvs-image"]

DEFAULT_PSK_SUITES = (
    "TLS-PSK-WITH-AES-128-CCM-8:TLS-PSK-WITH-AES-128-GCM-SHA256:"
    "TLS-ECDHE-PSK-WITH-AES-128-CBC-SHA256:TLS-PSK-WITH-AES-128-CBC-SHA"
)
DEFAULT_PSK_BROKER_CIPHERS = (
    "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES128-CBC-SHA"
)


class ConfigError(UsageError):
    """hil.toml is unreadable or invalid; the message says where and what was expected."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


class UnknownBoard(UsageError, KeyError):
    """HilConfig.board() for a name hil.toml does not have (a KeyError, as it always was);
    str() is the message itself, not KeyError's quoted repr of it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class RigSection:
    """[rig]: where per-run results go, and a file of more device profiles."""

    run_dir: str = "runs"
    profiles_file: str = ""  # a TOML file of [profiles.<name>] tables besides hil.toml's


@dataclass(frozen=True)
class BrokerSection:
    """[broker]: the Mosquitto the rig starts for each mode."""

    mosquitto: str = "mosquitto"
    bind: str = "127.0.0.1"
    host: str = "127.0.0.1"
    port: int = 0
    extra_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PkiSection:
    """[pki]: the generated test PKI."""

    dir: str = "pki"
    key_type: Literal["ec-p256", "rsa-2048"] = "ec-p256"
    validity_days: int = 365


@dataclass(frozen=True)
class DeviceSection:
    """[device]: the identity every board presents."""

    id: str = "hil-device-01"
    psk_identity: str = "hil-device-01"
    psk_bytes: Literal[16, 32] = 16
    # names/IPs the device's HTTPS server certificate covers: how the rig reaches a board
    web_names: list[str] = field(default_factory=lambda: ["localhost", "127.0.0.1"])


@dataclass(frozen=True)
class ModeSection:
    """[modes.<mode>]: cipher suites each side offers in that mode."""

    device_cipher_suites: str = ""
    broker_ciphers: str = ""


@dataclass(frozen=True)
class ModesSection:
    ca: ModeSection = field(default_factory=ModeSection)
    mutual: ModeSection = field(default_factory=ModeSection)
    psk: ModeSection = field(
        default_factory=lambda: ModeSection(
            device_cipher_suites=DEFAULT_PSK_SUITES, broker_ciphers=DEFAULT_PSK_BROKER_CIPHERS
        )
    )

    def get(self, mode: str) -> ModeSection:
        if mode not in MODES:
            raise KeyError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        section: ModeSection = getattr(self, mode)
        return section


@dataclass(frozen=True)
class TimeoutsSection:
    """[timeouts]: seconds."""

    broker_start: float = 10.0
    broker_stop: float = 5.0
    connect: float = 10.0
    message: float = 10.0
    board_boot: float = 15.0
    command: float = 10.0
    flash: float = 180.0
    wifi: float = 30.0
    port_return: float = 20.0


@dataclass(frozen=True)
class ResilienceSection:
    """[resilience]: the settings the resilience cells give a board (rig/cases/
    test_resilience.py), with Mongoose OS's names; the cells' bounds come from them, so a
    slower firmware is configured here, not special-cased. Seconds unless said."""

    reconnect_timeout_min: float = 0.2  # mqtt.reconnect_timeout_min: the first attempt's wait
    reconnect_timeout_max: float = 1.0  # mqtt.reconnect_timeout_max: the back-off's cap
    keep_alive: int = 2  # mqtt.keep_alive of the silent-link cell (detection <= 1.5 x this)
    max_queue_length: int = 3  # mqtt.max_queue_length of the outage cell (1..16)


@dataclass(frozen=True)
class WifiSection:
    """[wifi]: where physical boards' Wi-Fi credentials come from: the names of environment
    variables (CI secrets), never the credentials themselves. Empty: the boards use the
    credentials saved on them."""

    ssid_env: str = ""
    password_env: str = ""

    def missing_env(self) -> list[str]:
        """The named environment variables that are not set (never their values)."""
        names = [n for n in (self.ssid_env, self.password_env) if n]
        return [n for n in names if n not in os.environ]


@dataclass(frozen=True)
class Board:
    """[[boards]]: one board on this runner."""

    name: str
    kind: BoardKind
    port: str = ""
    location: str = ""
    mac: str = ""
    serial_number: str = ""
    target: str = "esp32"
    build_dir: str = ""
    variant: VirtualVariant = "native"  # virtual boards only
    flash: bool = True
    # how the rig reaches the board's own servers (HTTPS); empty: the IP it reports over Wi-Fi
    address: str = ""
    # a board on a labgrid farm ([labgrid]): a place by name, or any free place with these tags
    place: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # esp32 on this runner only: the command (program and arguments, no shell) that cuts the
    # board's power and restores it, the second step for a board that stops answering
    power_cycle: list[str] = field(default_factory=list)
    # the device profile of its firmware (rig/device/profile.py): built in, or [profiles.<name>]
    profile: str = "hil-agent"

    @property
    def on_farm(self) -> bool:
        """Is the board a labgrid place (reserved and acquired from the coordinator)?"""
        return bool(self.place or self.tags)

    @property
    def chip_clock(self) -> bool:
        """Does this board check certificate dates against its own clock, unset after a boot
        (an ESP32, and the virtual board that runs what it runs)? A native virtual board's
        mbedTLS 2.28 checks them against the host's clock."""
        return self.kind == "esp32" or self.variant == "esp"


DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default


@dataclass(frozen=True)
class LabgridSection:
    """[labgrid]: the coordinator of the board farm that boards with `place` or `tags` are on."""

    coordinator: str = ""  # HOST:PORT; empty: $LG_COORDINATOR, else labgrid's 127.0.0.1:20408
    acquire_timeout: float = 300.0  # seconds to wait for a place another job holds

    @property
    def address(self) -> str:
        return self.coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


@dataclass(frozen=True)
class ReportSection:
    """[report]: the run's HTML report and what it compares against."""

    trend_runs: int = 20  # earlier runs shown in trends and read for a cell's history
    keep_runs: int = 60  # run directories kept under [rig] run_dir (0: all)
    regression: float = 0.4  # a median this much above its rolling median is a regression


@dataclass(frozen=True)
class ProfileLines:
    """[profiles.<name>.lines]: what the firmware prints, as Python regular expressions
    searched in the text of each of its log lines (after an ESP-IDF-style `I (ms) tag: `)."""

    connected: str = ""  # the MQTT connection is up
    on_connect: list[str] = field(default_factory=list)  # each also printed on the way there
    ciphersuite: str = ""  # the negotiated suite (group `suite`); "": none printed
    handshake: str = ""  # the TLS handshake's duration (group `ms`); "": none printed
    published: str = ""  # a publish went out (groups `topic` and `message`)
    refused: list[str] = field(default_factory=list)  # a refusal (group `reason`)
    # a setting the firmware refuses where it reads it, at boot (group `reason`): the negative
    # cell for a refused value waits for it; required with settings = "nvs-image"
    refused_setting: str = ""


@dataclass(frozen=True)
class ProfileSection:
    """[profiles.<name>]: a device profile, how the rig drives a firmware
    (rig/device/profile.py turns it into a Profile)."""

    description: str = ""
    settings: ProfileSettings = "console"  # how settings reach the firmware
    clock: bool = True  # the rig sets the firmware's clock before each connection
    https: bool = False  # it serves HTTPS as the hil-agent does (the HTTPS cells run on it)
    # it reconnects as the hil-agent does (mqtt.reconnect_timeout_min/_max, keep-alive, an
    # offline QoS 1 queue; firmware/README.md): the resilience cells run on it. So far only
    # with settings = "console" or "mongoose-rpc"
    reconnect: bool = False
    # it exports its TLS sessions' secrets on its console when asked (`tls keylog <key>`, the
    # hil-agent's): a capture then has the board's secrets too; without, only the broker's and
    # the host peers' (a cell's capture still decrypts: docs/captures.md)
    keylog: bool = False
    lines: ProfileLines = field(default_factory=ProfileLines)
    # settings = "mongoose-rpc": the settings that go up as files (FS.Put) and name them; the
    # RPC method that publishes ({"topic", "message", "qos"}; nvs-image too, "": none)
    rpc_files: list[str] = field(
        default_factory=lambda: ["mqtt.ssl_ca_cert", "mqtt.ssl_cert", "mqtt.ssl_key"])
    rpc_publish: str = "MQTT.Pub"
    # settings = "nvs-image": the NVS partition's CSV template (esp-idf-nvs-partition-gen's
    # key,type,encoding,value with {placeholders}, rig/device/nvs_image.py) and its size
    nvs_csv: str = ""
    nvs_size: int = 0x6000


@dataclass(frozen=True)
class HilConfig:
    source: Path
    boards: list[Board]
    rig: RigSection = field(default_factory=RigSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    pki: PkiSection = field(default_factory=PkiSection)
    device: DeviceSection = field(default_factory=DeviceSection)
    modes: ModesSection = field(default_factory=ModesSection)
    timeouts: TimeoutsSection = field(default_factory=TimeoutsSection)
    resilience: ResilienceSection = field(default_factory=ResilienceSection)
    wifi: WifiSection = field(default_factory=WifiSection)
    labgrid: LabgridSection = field(default_factory=LabgridSection)
    report: ReportSection = field(default_factory=ReportSection)
    profiles: dict[str, ProfileSection] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    def path(self, value: str) -> Path:
        """A path from hil.toml: relative ones are relative to the file itself."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def pki_dir(self) -> Path:
        return self.path(self.pki.dir)

    @property
    def run_dir(self) -> Path:
        return self.path(self.rig.run_dir)

    def board(self, name: str) -> Board:
        for board in self.boards:
            if board.name == name:
                return board
        known = ", ".join(b.name for b in self.boards) or "none"
        raise UnknownBoard(f"no board named {name!r} in {self.source} (boards: {known})")


# --------------------------------------------------------------------------- loading


def load(path: str | Path) -> HilConfig:
    """Read and validate hil.toml; raises ConfigError with file, key path and expectation."""
    source = Path(path)
    data = _read_toml(source, "file not found (pass --config or create hil.toml)")
    return parse(data, source=source.resolve())


def load_profiles(path: Path) -> dict[str, ProfileSection]:
    """A file of device profiles, [profiles.<name>] tables and nothing else (hil.toml's
    [rig] profiles_file, or one the rig ships); ConfigError naming the file and the key."""
    data = _read_toml(path, "file not found ([rig] profiles_file in hil.toml)")
    for key in data:
        if key != "profiles":
            raise ConfigError(str(path), key, "unknown key; a profiles file holds "
                              "[profiles.<name>] tables only")
    profiles: dict[str, ProfileSection] = _convert(
        dict[str, ProfileSection], data.get("profiles", {}), "profiles", str(path))
    return profiles


def _read_toml(source: Path, missing: str) -> dict[str, Any]:
    name = str(source)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(name, "", missing) from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"invalid TOML: {exc}") from None


def parse(data: dict[str, Any], source: Path) -> HilConfig:
    name = str(source)
    values = _fields(HilConfig, data, "", name, skip={"source"})
    config = HilConfig(source=source, **values)
    _check(config, name)
    return config


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is dict:
        value_tp = get_args(tp)[1]
        return "a table of tables" if dataclasses.is_dataclass(value_tp) else "a table of strings"
    if origin is list:
        item = get_args(tp)[0]
        return "an array of tables" if dataclasses.is_dataclass(item) else (
            f"an array of {_describe(item).split(' ', 1)[1]}s")
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp)
    )


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _convert(tp: Any, value: Any, key: str, src: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp) and type(value) is type(get_args(tp)[0]):
            return value
    elif origin is dict:
        _, value_tp = get_args(tp)
        if isinstance(value, dict):
            return {str(k): _convert(value_tp, v, f"{key}.{k}", src) for k, v in value.items()}
    elif origin is list:
        (item_tp,) = get_args(tp)
        if isinstance(value, list):
            return [_convert(item_tp, v, f"{key}[{i}]", src) for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            assert isinstance(tp, type)
            return tp(**_fields(tp, value, key, src))
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, types.UnionType):
        raise TypeError(f"unsupported type {tp}")
    raise ConfigError(src, key, f"expected {_describe(tp)}, got {_toml_type(value)}")


def _fields(
    cls: type, data: dict[str, Any], prefix: str, src: str,
    skip: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for key in data:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                src, where, f"unknown key; expected one of: {', '.join(sorted(known))}"
            )
    out: dict[str, Any] = {}
    for fname, f in known.items():
        where = f"{prefix}.{fname}" if prefix else fname
        if fname in data:
            out[fname] = _convert(hints[fname], data[fname], where, src)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(src, where, f"missing; expected {_describe(hints[fname])}")
    return out


def _check_farm_board(board: Board, key: str, src: str) -> None:
    """place / tags (a labgrid board) and power_cycle (a local board's power switch)."""
    if board.on_farm:
        if board.kind != "esp32":
            raise ConfigError(src, f"{key}.{'place' if board.place else 'tags'}",
                              "place and tags are for esp32 boards on a labgrid farm; a virtual "
                              "board runs on this machine: remove this key")
        if board.place and board.tags:
            raise ConfigError(src, f"{key}.tags", "name a place or give tags, not both")
        pins = [p for p in ("port", "location", "mac", "serial_number") if getattr(board, p)]
        if pins:
            raise ConfigError(src, f"{key}.{pins[0]}", "a labgrid board's port comes from its "
                              "place (the exporter's RFC 2217 port): remove this key")
        if board.place and not _NAME_RE.match(board.place):
            raise ConfigError(src, f"{key}.place", "expected a labgrid place name (letters, "
                              f"digits, '.', '_', '-'), got {board.place!r}")
        for tag, value in board.tags.items():
            if not _TAG_KEY_RE.match(tag) or not _TAG_RE.match(value):
                raise ConfigError(src, f"{key}.tags.{tag}", "expected a tag as labgrid takes "
                                  "it: a key of lower-case letters, digits and '_' (2 or more, "
                                  "a letter first) = a value of letters, digits, '.', '_', '-'")
        if board.power_cycle:
            raise ConfigError(src, f"{key}.power_cycle", "a labgrid board is power cycled "
                              "through its place's power resource: remove this key")
    if board.power_cycle:
        if board.kind != "esp32":
            raise ConfigError(src, f"{key}.power_cycle", "a virtual board's power is its "
                              "process, which the rig restarts: remove this key")
        if not all(board.power_cycle):
            raise ConfigError(src, f"{key}.power_cycle", "expected a program and its "
                              "arguments, none empty, e.g. [\"uhubctl\", \"-l\", \"1-1\", "
                              "\"-p\", \"2\", \"-a\", \"cycle\"]")


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TAG_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")  # labgrid's TAG_KEY, whole
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SUITE_RE = re.compile(r"^[A-Z0-9-]+(:[A-Z0-9-]+)*$")


def _check(config: HilConfig, src: str) -> None:
    """Rules that span fields or values that the types alone do not pin down, one section
    after another (the first problem found is the one reported)."""
    _check_boards(config.boards, src)
    _check_report(config.report, src)
    _check_labgrid(config.labgrid, src)
    _check_wifi(config.wifi, src)
    _check_broker(config.broker, src)
    _check_device(config.device, src)
    if config.pki.validity_days < 2:
        raise ConfigError(src, "pki.validity_days", "expected at least 2 days")
    _check_modes(config.modes, src)
    for name, value in dataclasses.asdict(config.timeouts).items():
        if value <= 0:
            raise ConfigError(src, f"timeouts.{name}", f"expected seconds > 0, got {value}")
    _check_resilience(config.resilience, src)


def _check_resilience(r: ResilienceSection, src: str) -> None:
    """The agent's ranges (firmware/README.md): seconds with at most 3 decimals."""
    for name in ("reconnect_timeout_min", "reconnect_timeout_max"):
        value = getattr(r, name)
        if not 0.001 <= value <= 3600 or round(value, 3) != value:
            raise ConfigError(src, f"resilience.{name}", "expected seconds from 0.001 to 3600 "
                              f"with at most 3 decimals, got {value}")
    if r.reconnect_timeout_max < r.reconnect_timeout_min:
        raise ConfigError(src, "resilience.reconnect_timeout_max", "expected at least "
                          f"reconnect_timeout_min ({r.reconnect_timeout_min:g} s), got "
                          f"{r.reconnect_timeout_max:g}")
    if not 1 <= r.keep_alive <= 65535:
        raise ConfigError(src, "resilience.keep_alive", f"expected seconds from 1 to 65535, "
                          f"got {r.keep_alive}")
    if not 1 <= r.max_queue_length <= 16:
        raise ConfigError(src, "resilience.max_queue_length", "expected 1 to 16 messages, got "
                          f"{r.max_queue_length}")


def _check_boards(boards: list[Board], src: str) -> None:
    """[[boards]]: at least one; names unique, places not shared; each board on its own."""
    if not boards:
        raise ConfigError(src, "boards", "no [[boards]] entries; expected at least one board")
    seen: set[str] = set()
    places: dict[str, str] = {}
    for i, board in enumerate(boards):
        if board.place and board.place in places:
            raise ConfigError(src, f"boards[{i}].place", f"place {board.place!r} is already taken "
                              f"by board {places[board.place]!r}: one place, one board")
        if board.place:
            places[board.place] = board.name
        key = f"boards[{i}]"
        if not _NAME_RE.match(board.name):
            raise ConfigError(
                src, f"{key}.name", f"expected letters, digits, '.', '_', '-' (got {board.name!r})"
            )
        if board.name in seen:
            raise ConfigError(src, f"{key}.name", f"duplicate board name {board.name!r}")
        seen.add(board.name)
        _check_board(board, key, src)


def _check_board(board: Board, key: str, src: str) -> None:
    """One board: how it is found, which keys its kind takes, its farm keys, its MAC."""
    pins = [p for p in ("port", "location", "mac", "serial_number") if getattr(board, p)]
    if board.kind == "esp32" and not pins and not board.on_farm:
        raise ConfigError(
            src,
            key,
            "an esp32 board needs one of port, location, mac or serial_number to find it, "
            "or a labgrid place or tags",
        )
    if board.kind == "virtual" and pins:
        raise ConfigError(
            src,
            f"{key}.{pins[0]}",
            "a virtual board gets its pseudo-terminal from the rig; remove this key",
        )
    if board.kind == "esp32" and board.variant != "native":
        raise ConfigError(src, f"{key}.variant",
                          "variant is for virtual boards (an esp32 runs its ESP-IDF build); "
                          "remove this key")
    if board.kind == "virtual" and board.address:
        raise ConfigError(src, f"{key}.address",
                          "a virtual board is reached on 127.0.0.1; remove this key")
    _check_farm_board(board, key, src)
    if board.mac and not re.fullmatch(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}", board.mac):
        raise ConfigError(src, f"{key}.mac", f"expected aa:bb:cc:dd:ee:ff, got {board.mac!r}")


def _check_report(r: ReportSection, src: str) -> None:
    if r.trend_runs < 1:
        raise ConfigError(src, "report.trend_runs", f"expected 1 or more runs, got {r.trend_runs}")
    if r.keep_runs < 0:
        raise ConfigError(src, "report.keep_runs",
                          f"expected 0 (keep all) or a number of runs, got {r.keep_runs}")
    if not 0 < r.regression <= 10:
        raise ConfigError(src, "report.regression", "expected a fraction above the rolling "
                          f"median, e.g. 0.4 for 40 %, got {r.regression}")


def _check_labgrid(lg: LabgridSection, src: str) -> None:
    if lg.coordinator and not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?",
                                           lg.coordinator):
        raise ConfigError(src, "labgrid.coordinator",
                          f"expected HOST or HOST:PORT, got {lg.coordinator!r}")
    if lg.acquire_timeout <= 0:
        raise ConfigError(src, "labgrid.acquire_timeout",
                          f"expected seconds > 0, got {lg.acquire_timeout}")


def _check_wifi(w: WifiSection, src: str) -> None:
    if bool(w.ssid_env) != bool(w.password_env):
        raise ConfigError(src, "wifi", "set both ssid_env and password_env (environment variable "
                          "names), or neither")
    for name in ("ssid_env", "password_env"):
        value = getattr(w, name)
        if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ConfigError(src, f"wifi.{name}", "expected the NAME of an environment "
                              f"variable (letters, digits, '_'), got {len(value)} characters")


def _check_broker(b: BrokerSection, src: str) -> None:
    if not 0 <= b.port <= 65535:
        raise ConfigError(src, "broker.port", f"expected 0 (automatic) or 1..65535, got {b.port}")
    try:
        ipaddress.ip_address(b.bind)
    except ValueError:
        raise ConfigError(
            src, "broker.bind", f"expected an IP address such as 127.0.0.1, got {b.bind!r}"
        ) from None
    if not b.host:
        raise ConfigError(src, "broker.host", "expected the host name or IP boards use, got ''")


def _check_device(device: DeviceSection, src: str) -> None:
    if not device.id or not _NAME_RE.match(device.id):
        raise ConfigError(
            src, "device.id", f"expected letters, digits, '.', '_', '-' (got {device.id!r})"
        )
    if not device.psk_identity or ":" in device.psk_identity:
        raise ConfigError(
            src, "device.psk_identity", "expected a non-empty identity without ':' characters"
        )
    if not device.web_names or not all(device.web_names):
        raise ConfigError(src, "device.web_names",
                          "expected at least one host name or IP, none empty")


def _check_modes(modes: ModesSection, src: str) -> None:
    for mode in MODES:
        suites = modes.get(mode).device_cipher_suites
        if suites and not _SUITE_RE.match(suites):
            raise ConfigError(
                src,
                f"modes.{mode}.device_cipher_suites",
                "expected colon-separated mbedTLS suite names such as "
                f"TLS-PSK-WITH-AES-128-CCM-8, got {suites!r}",
            )
    if not modes.psk.device_cipher_suites:
        raise ConfigError(
            src,
            "modes.psk.device_cipher_suites",
            "PSK needs a suite list: without one the device offers no PSK suite at all",
        )
