"""hil.toml validation: one clear error naming file, key path and expectation (the CLI's exit 2
on a bad file: tests/cli/test_config_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.config import MODES, ConfigError, load
from tests.support import ROOT

MINIMAL = '[[boards]]\nname = "v0"\nkind = "virtual"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hil.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    return str(info.value)


def test_committed_hil_toml_is_valid_and_runs_both_virtual_variants() -> None:
    config = load(ROOT / "hil.toml")
    assert [(b.name, b.kind, b.variant, b.profile) for b in config.boards] == [
        ("virtual-0", "virtual", "native", "hil-agent"), ("virtual-esp", "virtual", "esp",
                                                          "hil-agent"),
        ("virtual-mos", "virtual", "native", "mongoose-os"),
        ("virtual-nvs", "virtual", "native", "esp-idf-nvs")]
    assert [b.chip_clock for b in config.boards] == [False, True, False, False]
    assert config.broker.bind == "127.0.0.1"
    assert "TLS-PSK-WITH-AES-128-CCM-8" in config.modes.psk.device_cipher_suites
    assert config.modes.psk.broker_ciphers.startswith("PSK-AES128-CCM8")


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, MINIMAL))
    assert config.broker.port == 0
    assert config.pki_dir == tmp_path / "pki"
    assert config.device.psk_bytes == 16
    assert [config.modes.get(m) for m in MODES]


def test_unknown_key_names_file_path_and_choices(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + '[broker]\nbnid = "127.0.0.1"\n')
    assert str(tmp_path / "hil.toml") in msg
    assert "broker.bnid: unknown key" in msg
    assert "bind" in msg  # lists what is allowed


def test_unknown_key_in_board(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + 'colour = "red"\n')
    assert "boards[0].colour: unknown key" in msg


def test_wrong_type(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + '[broker]\nport = "8883"\n')
    assert "broker.port: expected an integer, got the string '8883'" in msg


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + "[broker]\nport = true\n")
    assert "broker.port: expected an integer, got a boolean" in msg


def test_missing_value(tmp_path: Path) -> None:
    msg = error_for(tmp_path, '[[boards]]\nname = "v0"\n')
    assert "boards[0].kind: missing; expected one of 'virtual', 'esp32'" in msg


def test_bad_choice(tmp_path: Path) -> None:
    msg = error_for(tmp_path, '[[boards]]\nname = "v0"\nkind = "esp33"\n')
    assert "boards[0].kind: expected one of 'virtual', 'esp32', got the string 'esp33'" in msg


def test_psk_length_must_be_16_or_32(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + "[device]\npsk_bytes = 20\n")
    assert "device.psk_bytes: expected one of 16, 32, got the integer 20" in msg


def test_web_names_must_name_something(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + "[device]\nweb_names = []\n")
    assert "device.web_names: expected at least one host name or IP" in msg


def test_wifi_names_variables_never_values(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + '[wifi]\nssid_env = "HIL_WIFI_SSID"\n')
    assert "wifi: set both ssid_env and password_env" in msg
    secret = "my wifi pass!"
    msg = error_for(tmp_path, MINIMAL + f'[wifi]\nssid_env = "S"\npassword_env = "{secret}"\n')
    assert "wifi.password_env: expected the NAME of an environment variable" in msg
    assert secret not in msg  # a password pasted by mistake is not echoed


def test_virtual_board_has_no_address(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + 'address = "10.0.0.5"\n')
    assert "boards[0].address: a virtual board is reached on 127.0.0.1" in msg


def test_no_boards(tmp_path: Path) -> None:
    assert "boards: missing; expected an array of tables" in error_for(
        tmp_path, "[broker]\nport = 1\n")
    assert "boards: no [[boards]] entries" in error_for(tmp_path, "boards = []\n")


def test_duplicate_board_names(tmp_path: Path) -> None:
    assert "duplicate board name 'v0'" in error_for(tmp_path, MINIMAL + MINIMAL)


def test_esp32_needs_a_way_to_find_it(tmp_path: Path) -> None:
    msg = error_for(tmp_path, '[[boards]]\nname = "b1"\nkind = "esp32"\n')
    assert "boards[0]: an esp32 board needs one of port, location, mac or serial_number" in msg


def test_virtual_board_rejects_a_port(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + 'port = "/dev/ttyUSB0"\n')
    assert "boards[0].port: a virtual board gets its pseudo-terminal" in msg


def test_virtual_variant(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).boards[0].variant == "native"
    msg = error_for(tmp_path, MINIMAL + 'variant = "esp32"\n')
    assert "boards[0].variant: expected one of 'native', 'esp', got the string 'esp32'" in msg
    msg = error_for(tmp_path, '[[boards]]\nname = "b1"\nkind = "esp32"\nport = "/dev/ttyUSB0"\n'
                    'variant = "esp"\n')
    assert "boards[0].variant: variant is for virtual boards" in msg
    chip = load(write(tmp_path, '[[boards]]\nname = "b1"\nkind = "esp32"\nport = "/dev/x"\n'))
    assert chip.boards[0].chip_clock


def test_bind_must_be_an_ip(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + '[broker]\nbind = "localhost"\n')
    assert "broker.bind: expected an IP address" in msg


def test_psk_needs_a_suite_list(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + '[modes.psk]\ndevice_cipher_suites = ""\n')
    assert "modes.psk.device_cipher_suites: PSK needs a suite list" in msg


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    msg = error_for(tmp_path, MINIMAL + "[broker\n")
    assert "invalid TOML" in msg and str(tmp_path) in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.toml")


ESP32 = '[[boards]]\nname = "b1"\nkind = "esp32"\n'


def test_farm_boards_by_place_or_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    config = load(write(tmp_path, ESP32 + 'place = "bench1-esp0"\n' + ESP32.replace(
        "b1", "b2") + 'tags = { board = "esp32", rev = "v3" }\n'))
    assert [b.on_farm for b in config.boards] == [True, True]
    assert config.boards[1].tags == {"board": "esp32", "rev": "v3"}
    assert config.labgrid.address == "127.0.0.1:20408"  # labgrid's own default
    monkeypatch.setenv("LG_COORDINATOR", "coordinator.lab:20408")
    assert config.labgrid.address == "coordinator.lab:20408"
    config = load(write(tmp_path, '[labgrid]\ncoordinator = "10.0.0.5:20408"\n'
                        'acquire_timeout = 60\n' + ESP32 + 'place = "p"\n'))
    assert (config.labgrid.address, config.labgrid.acquire_timeout) == ("10.0.0.5:20408", 60.0)


@pytest.mark.parametrize(("extra", "where", "what"), [
    ('place = "p"\ntags = { board = "esp32" }\n', "boards[0].tags", "not both"),
    ('place = "p"\nport = "/dev/ttyUSB0"\n', "boards[0].port", "comes from its place"),
    ('place = "p q"\n', "boards[0].place", "expected a labgrid place name"),
    ('tags = { board = 3 }\n', "boards[0].tags.board", "expected a string, got the integer 3"),
    ('tags = { "bo ard" = "x" }\n', "boards[0].tags.bo ard", "a key of lower-case letters"),
    ('tags = { Rev = "x" }\n', "boards[0].tags.Rev", "a key of lower-case letters"),
    ('place = "p"\npower_cycle = ["uhubctl"]\n', "boards[0].power_cycle",
     "through its place's power resource"),
    ('port = "/dev/ttyUSB0"\npower_cycle = ["uhubctl", ""]\n', "boards[0].power_cycle",
     "none empty"),
])
def test_farm_board_errors_name_the_key(tmp_path: Path, extra: str, where: str,
                                        what: str) -> None:
    msg = error_for(tmp_path, ESP32 + extra)
    assert f"{where}: " in msg and what in msg, msg


def test_farm_keys_are_for_esp32_boards(tmp_path: Path) -> None:
    assert "boards[0].place: place and tags are for esp32 boards" in error_for(
        tmp_path, MINIMAL + 'place = "p"\n')
    assert "boards[0].power_cycle: a virtual board's power is its process" in error_for(
        tmp_path, MINIMAL + 'power_cycle = ["x"]\n')
    assert "labgrid.acquire_timeout: expected seconds > 0" in error_for(
        tmp_path, "[labgrid]\nacquire_timeout = 0\n" + MINIMAL)
    for bad in ("http://x/", "a:b:c"):
        assert "labgrid.coordinator: expected HOST or HOST:PORT" in error_for(
            tmp_path, f'[labgrid]\ncoordinator = "{bad}"\n' + MINIMAL)
    assert "boards[1].place: place 'p' is already taken by board 'b1'" in error_for(
        tmp_path, ESP32 + 'place = "p"\n' + ESP32.replace("b1", "b2") + 'place = "p"\n')


def test_the_wait_for_a_power_cycled_boards_port_is_a_timeout_like_the_others(
        tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL)).timeouts.port_return == 20.0
    assert load(write(tmp_path, "[timeouts]\nport_return = 5\n" + MINIMAL)
                ).timeouts.port_return == 5.0
    assert load(ROOT / "hil.toml").timeouts.port_return == 20.0  # committed, with its comment
    assert "timeouts.port_return: expected seconds > 0, got 0" in error_for(
        tmp_path, "[timeouts]\nport_return = 0\n" + MINIMAL)
    assert "timeouts.port_return: expected a number" in error_for(
        tmp_path, '[timeouts]\nport_return = "5"\n' + MINIMAL)


def test_the_resilience_settings_are_checked_as_the_agent_would(tmp_path: Path) -> None:
    r = load(write(tmp_path, MINIMAL)).resilience
    assert (r.reconnect_timeout_min, r.reconnect_timeout_max, r.keep_alive,
            r.max_queue_length) == (0.2, 1.0, 2, 3)
    assert load(ROOT / "hil.toml").resilience == r  # committed, with its comments
    r = load(write(tmp_path, "[resilience]\nreconnect_timeout_max = 5\nkeep_alive = 10\n"
                   + MINIMAL)).resilience
    assert (r.reconnect_timeout_max, r.keep_alive) == (5.0, 10)
    for bad, said in (("reconnect_timeout_min = 0", "resilience.reconnect_timeout_min: expected "
                       "seconds from 0.001 to 3600 with at most 3 decimals, got 0"),
                      ("reconnect_timeout_min = 0.0001", "with at most 3 decimals, got 0.0001"),
                      ("reconnect_timeout_min = 2\nreconnect_timeout_max = 1",
                       "resilience.reconnect_timeout_max: expected at least "
                       "reconnect_timeout_min (2 s), got 1"),
                      ("keep_alive = 0", "resilience.keep_alive: expected seconds from 1"),
                      ("max_queue_length = 17", "resilience.max_queue_length: expected 1 to 16"),
                      ("surprise = 1", "resilience.surprise")):
        assert said in error_for(tmp_path, f"[resilience]\n{bad}\n" + MINIMAL), bad
