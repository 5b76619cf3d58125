"""Device profiles (rig/device/profile.py): the built-in hil-agent one, user profiles in hil.toml
or a file it names, and every bad input named by file and key (the CLI's exit 2 on them:
tests/cli/test_config_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.config import ConfigError, load
from rig.device.profile import DEFAULT, ProfileError, check, profile_of

BOARD = '[[boards]]\nname = "v0"\nkind = "virtual"\n'
LINES = """
[profiles.my-app]
description = "a console app that prints its own words"
https = false
clock = false
[profiles.my-app.lines]
connected = '^mqtt: up$'
ciphersuite = '^suite=(?P<suite>\\S+)$'
published = '^sent (?P<topic>\\S+) (?P<message>\\S+)$'
refused = ['^mqtt: refused: (?P<reason>.+)$']
"""


def config_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hil.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        check(load(config_with(tmp_path, text)))
    return str(info.value)


def test_a_board_without_profile_runs_the_built_in_hil_agent(tmp_path: Path) -> None:
    config = load(config_with(tmp_path, BOARD))
    profile = profile_of(config, config.boards[0])
    assert profile.name == DEFAULT == "hil-agent" and profile.settings == "console"
    assert profile.https and profile.clock
    assert profile.source.endswith("profiles/hil-agent.toml")
    # its lines are the agent's: a refusal's reason is read from the device's own words
    assert profile.refusal(["MQTT0 connecting to 127.0.0.1:1883",
                            "MQTT0 TLS handshake failed: -0x2700 X509 - Certificate "
                            "verification failed"]).startswith("-0x2700")
    assert profile.refusal(["MQTT0 CONNACK 5"]) == "5"
    assert profile.refusal(["MQTT0 CONNACK 0"]) == ""


def test_a_user_profile_in_hil_toml_is_a_boards_profile(tmp_path: Path) -> None:
    config = load(config_with(tmp_path, BOARD.replace('kind = "virtual"\n',
                                                      'kind = "virtual"\nprofile = "my-app"\n')
                              + LINES))
    profile = profile_of(config, config.boards[0])
    assert (profile.name, profile.https, profile.clock) == ("my-app", False, False)
    assert profile.source == str(tmp_path / "hil.toml")
    assert profile.lines.handshake is None and profile.lines.on_connect == ()
    assert profile.refusal(["mqtt: refused: bad certificate"]) == "bad certificate"


def test_a_profiles_file_is_read_relative_to_hil_toml(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(LINES)
    config = load(config_with(tmp_path, '[rig]\nprofiles_file = "profiles.toml"\n'
                              + BOARD + 'profile = "my-app"\n'))
    assert profile_of(config, config.boards[0]).source == str(tmp_path / "profiles.toml")


@pytest.mark.parametrize("text, key, says", [
    (BOARD + 'profile = "mongoose"\n', "boards[0].profile",
     "no profile named 'mongoose'; known: esp-idf-nvs, hil-agent, mongoose-os"),
    (BOARD + LINES.replace("connected =", "conected ="), "profiles.my-app.lines.conected",
     "unknown key"),
    (BOARD + LINES.replace('https = false', 'https = "no"'), "profiles.my-app.https",
     "expected true or false"),
    (BOARD + LINES.replace('clock = false', 'settings = "telnet"'), "profiles.my-app.settings",
     "expected one of 'console'"),
    (BOARD + LINES.replace("'^mqtt: up$'", "'^mqtt: (up$'"), "profiles.my-app.lines.connected",
     "not a regular expression: missing ), unterminated subpattern"),
    (BOARD + LINES.replace("(?P<suite>\\S+)", "(\\S+)"), "profiles.my-app.lines.ciphersuite",
     "expected the named group(s) (?P<suite>...)"),
    (BOARD + LINES.replace("(?P<reason>.+)", "(.+)"), "profiles.my-app.lines.refused[0]",
     "expected the named group(s) (?P<reason>...)"),
    (BOARD + LINES.replace("(?P<topic>\\S+) (?P<message>\\S+)", "(?P<topic>\\S+) (\\S+)"),
     "profiles.my-app.lines.published", "(?P<message>...)"),
    (BOARD + LINES.replace("connected = '^mqtt: up$'\n", ""), "profiles.my-app.lines.connected",
     "missing; expected a regular expression"),
    (BOARD + LINES.replace("my-app", "hil-agent"), "profiles.hil-agent",
     "is already defined in"),
    (BOARD + "[profiles]\nmy-app = 3\n", "profiles.my-app", "expected a table, got the integer 3"),
    (BOARD + LINES.replace('clock = false',
                           'settings = "mongoose-rpc"\nrpc_files = ["mqtt.server"]'),
     "profiles.my-app.rpc_files[0]", "expected one of mqtt.ssl_ca_cert, mqtt.ssl_cert, "
     "mqtt.ssl_key (a certificate or key), got 'mqtt.server'"),
    (BOARD + LINES.replace('clock = false', 'settings = "mongoose-rpc"\nrpc_publish = ""'),
     "profiles.my-app.rpc_publish", "missing; expected the RPC method that publishes"),
    ('[rig]\nprofiles_file = "missing.toml"\n' + BOARD, "",
     "file not found ([rig] profiles_file in hil.toml)"),
])
def test_a_bad_profile_is_named_with_its_key(tmp_path: Path, text: str, key: str,
                                             says: str) -> None:
    msg = error_for(tmp_path, text)
    assert key in msg and says in msg, msg


def test_a_profiles_file_holds_profiles_only(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text("[broker]\nport = 1\n" + LINES)
    msg = error_for(tmp_path, '[rig]\nprofiles_file = "profiles.toml"\n' + BOARD)
    assert str(tmp_path / "profiles.toml") in msg and "broker: unknown key" in msg, msg


def test_profile_errors_stop_like_a_broken_hil_toml() -> None:
    assert issubclass(ProfileError, ConfigError) and ProfileError.exit_code == 2


def test_the_built_in_mongoose_os_profile_connects_at_boot(tmp_path: Path) -> None:
    config = load(config_with(tmp_path, BOARD + 'profile = "mongoose-os"\n'))
    profile = profile_of(config, config.boards[0])
    assert (profile.settings, profile.connects_at_boot, profile.https, profile.clock) == \
        ("mongoose-rpc", True, False, False)
    assert profile.rpc_publish == "MQTT.Pub" and "mqtt.ssl_ca_cert" in profile.rpc_files
    assert profile.reconnect  # the resilience cells run on it
    assert not profile.keylog  # a Mongoose OS app has no `tls keylog`: the rig never asks it
    plain = load(config_with(tmp_path, BOARD))
    assert not profile_of(plain, plain.boards[0]).connects_at_boot
    assert profile_of(plain, plain.boards[0]).reconnect
    assert profile_of(plain, plain.boards[0]).keylog  # the hil-agent exports its secrets


def test_mongoose_settings_are_nested_and_files_named() -> None:
    from rig.device.mongoose import file_name, nested

    assert nested({"mqtt.server": "h:1", "mqtt.enable": True, "mqtt.ssl_key": None}) == \
        {"mqtt": {"server": "h:1", "enable": True, "ssl_key": None}}
    assert file_name("mqtt.ssl_ca_cert") == "ssl_ca_cert.pem"


def test_mongoose_keeps_its_numbers_and_booleans_typed() -> None:
    """Config.Set gets what Mongoose OS keeps as a number or a boolean as one, as mos does."""
    from rig.device.mongoose import MQTT_KEYS, TYPED

    assert TYPED["mqtt.reconnect_timeout_min"]("0.2") == 0.2
    assert TYPED["mqtt.keep_alive"]("2") == 2 and TYPED["mqtt.max_queue_length"]("3") == 3
    assert TYPED["mqtt.clean_session"]("false") is False
    assert set(TYPED) <= set(MQTT_KEYS)  # each cleared (null) when a cell does not set it


NVS = """
[profiles.my-app]
settings = "nvs-image"
nvs_csv = \"\"\"
key,type,encoding,value
hil,namespace,,
broker_uri,data,string,{broker_uri}
\"\"\"
[profiles.my-app.lines]
connected = '^connected$'
refused = ['^refused: (?P<reason>.+)$']
refused_setting = '^bad setting: (?P<reason>.+)$'
"""


@pytest.mark.parametrize("change, key, says", [
    (("broker_uri,data,string,{broker_uri}", "broker_uri,data,string,{broker}"),
     "profiles.my-app.nvs_csv", "unknown placeholder {broker}"),
    (("key,type,encoding,value", "key,type,value"), "profiles.my-app.nvs_csv",
     "header is 'key,type,value'"),
    (('settings = "nvs-image"', 'settings = "nvs-image"\nnvs_size = 5000'),
     "profiles.my-app.nvs_size", "expected a positive multiple of 4096"),
    (('nvs_csv = \"\"\"', 'nvs_csv_x = \"\"\"'), "profiles.my-app.nvs_csv_x", "unknown key"),
    (("refused_setting = '^bad setting: (?P<reason>.+)$'\n", ""),
     "profiles.my-app.lines.refused_setting", "missing; expected the line the firmware prints "
     "when it refuses a setting it reads at boot"),
    (("bad setting: (?P<reason>.+)$", "bad setting: (.+)$"),
     "profiles.my-app.lines.refused_setting",
     "expected the named group(s) (?P<reason>...)"),
    (('settings = "nvs-image"', 'settings = "nvs-image"\nreconnect = true'),
     "profiles.my-app.reconnect", 'reconnect = true needs settings = "console" or '
     '"mongoose-rpc"'),
    (('settings = "nvs-image"', 'settings = "nvs-image"\nkeylog = true'),
     "profiles.my-app.keylog", 'keylog = true needs settings = "console"'),
    (('settings = "nvs-image"', 'settings = "nvs-image"\nkeylog = "yes"'),
     "profiles.my-app.keylog", "expected"),
])
def test_a_bad_nvs_profile_is_named(tmp_path: Path, change: tuple[str, str], key: str,
                                    says: str) -> None:
    msg = error_for(tmp_path, BOARD + NVS.replace(*change))
    assert key in msg and says in msg, msg


def test_an_nvs_profile_and_the_cells_values(tmp_path: Path) -> None:
    from rig.device.nvs_boot import values
    from rig.device.provision import Setting

    config = load(config_with(tmp_path, BOARD + 'profile = "esp-idf-nvs"\n'))
    profile = profile_of(config, config.boards[0])
    assert (profile.settings, profile.connects_at_boot, profile.nvs_size) == \
        ("nvs-image", True, 0x6000)
    got = values([Setting("mqtt.server", b"[::1]:8883"), Setting("mqtt.ssl_psk_key", b"ab")])
    assert got["broker_uri"] == "mqtts://[::1]:8883" and got["broker_host"] == "::1"
    assert got["broker_port"] == "8883" and got["psk_key"] == "ab" and got["ca_cert"] is None
