"""`hil`: the rig's command line.

Exit codes: 0 success, 1 a check/test failed, 2 bad usage or invalid hil.toml (nothing started).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO

from rig.config import MODES, WEB_MODES, Board, HilConfig, Mode, load
from rig.device.profile import check as check_profiles
from rig.errors import RigError
from rig.local.children import die_with_parent
from rig.report.run_dir import TIMING_FILE, new_run_dir

# Each command imports what it needs when it runs: `hil run` starts its pytest without waiting
# for the broker, PKI and report code (cryptography, paho, pygal), and reads the report's in
# the background while pytest starts (_prefetch).

# pytest settings of `hil run` (it ignores the ini files of the directory it runs in)
RUN_INI = ["-o", "junit_family=xunit1",  # JUnit properties and <board>.<mode>.<case> names
           # pytest-embedded's autouse fixture calls record_xml_attribute on every test
           "-W", "ignore:record_xml_attribute is an experimental feature"
                 ":pytest.PytestExperimentalApiWarning"]


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("HIL_CONFIG") or "hil.toml")


def _load(args: argparse.Namespace) -> HilConfig:
    """hil.toml, validated, with every board's device profile (rig/device/profile.py)."""
    config = load(_config_path(args))
    check_profiles(config)
    return config


def cmd_doctor(args: argparse.Namespace) -> int:
    from rig.doctor import format_table, run_checks

    checks, config = run_checks(_config_path(args))
    print(format_table(checks))
    if config is None:
        print("\nhil.toml is invalid: fix it first (see the hil.toml row)", file=sys.stderr)
        return 2
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(f"\n{len(missing)} required item(s) missing: {', '.join(missing)}")
        return 1
    print("\nall required items present")
    return 0


def _print_pki(rows: Sequence[object]) -> None:
    for r in rows:
        print(f"  {r.name:<17} {r.state:<8} {r.detail}")  # type: ignore[attr-defined]


def cmd_pki(args: argparse.Namespace) -> int:
    from rig.pki import Pki

    config = _load(args)
    pki = Pki(config)
    if args.pki_command == "init":
        rows = pki.ensure()
        print(f"PKI in {pki.dir}:")
        _print_pki(rows)
        return 0
    rows = pki.status()
    print(f"PKI in {pki.dir}:")
    _print_pki(rows)
    return 0 if all(r.state == "ok" for r in rows) else 1


def cmd_broker_up(args: argparse.Namespace) -> int:
    from rig.broker import mosquitto as broker_mod
    from rig.host.peers import Target, shell_line
    from rig.host.tls import credentials
    from rig.pki import Pki

    config = _load(args)
    pki = Pki(config)
    pki.ensure()
    mode: Mode = args.mode
    # the binary first: a missing Mosquitto must not leave an empty runs/<id>/ behind
    broker_mod.find_mosquitto(config.broker.mosquitto)
    run_dir = new_run_dir(config.run_dir)
    overrides = {"port": args.port} if args.port is not None else {}
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # stop as on Ctrl-C: the broker and its
        if signal.getsignal(sig) is not signal.SIG_IGN:  # private PSK directory go
            signal.signal(sig, lambda *_: stop.set())
    with broker_mod.running(config, pki, mode, run_dir, **overrides) as b:
        host = config.broker.host
        creds = credentials(config, pki, mode)
        line = shell_line(Target(host, b.port), creds, "hil/test", "hello",
                          psk_file=pki.psk_path)
        print(f"broker ({mode}) listening on {config.broker.bind}:{b.port} "
              f"(pid {b.pid}, ready in {b.start_to_ready_s * 1000:.1f} ms)")
        print(f"log: {b.log_path}")
        if mode == "psk":
            print("publish to it with (the key reaches mosquitto_pub through an options file "
                  "in a private temporary directory, $XDG_CONFIG_HOME/mosquitto_pub, never "
                  "through a command line):")
        else:
            print("publish to it with:")
        print(f"  {line}")
        print("Ctrl-C stops it.", flush=True)
        try:
            while not stop.wait(0.5):
                if not b.running:
                    print("broker exited; see the log", file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
    print("broker stopped")
    return 0


def _preflight_modes(config: HilConfig, modes: Sequence[Mode],
                     run_dir: Path) -> list[dict[str, object]]:
    from rig.broker import mosquitto as broker_mod
    from rig.host.observer import ObserverError, preflight
    from rig.host.tls import credentials
    from rig.pki import Pki, PkiError

    pki = Pki(config)
    pki.ensure()
    results: list[dict[str, object]] = []
    for mode in modes:
        row: dict[str, object] = {"mode": mode}
        try:
            with broker_mod.running(config, pki, mode, run_dir) as b:
                row["broker_ready_ms"] = round(b.start_to_ready_s * 1000, 1)
                res = preflight(config.broker.host, b.port, credentials(config, pki, mode),
                                config.timeouts.connect)
                row.update({k: v for k, v in asdict(res).items() if k not in ("mode",)})
                row["verdict"] = "pass"
        except (broker_mod.BrokerError, ObserverError, PkiError, OSError) as exc:
            row["verdict"] = "FAIL"
            row["reason"] = str(exc)
        results.append(row)
        _print_row(row)
    return results


def _print_row(row: dict[str, object]) -> None:
    if row["verdict"] == "pass":
        print(f"  {row['mode']:<7} pass  {row['protocol']} {row['cipher']} "
              f"handshake {row['handshake_ms']:.1f} ms, round trip {row['roundtrip_ms']:.1f} ms",
              flush=True)
    else:
        print(f"  {row['mode']:<7} FAIL  {row.get('reason')}", flush=True)


def cmd_preflight(args: argparse.Namespace) -> int:
    config = _load(args)
    run_dir = new_run_dir(config.run_dir)
    modes = args.mode or list(MODES)
    print(f"host preflight against Mosquitto (run dir {run_dir}):")
    results = _preflight_modes(config, modes, run_dir)
    (run_dir / "preflight.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["verdict"] == "pass" for r in results) else 1


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: the mode matrix (rig.cases.test_mqtt_modes), the device's HTTPS server
    (rig.cases.test_https), the chip's clock on boards that have its rules
    (rig.cases.test_clock) and the negative matrix (rig.cases.test_negative, expected
    refusals) over the boards of hil.toml, run by pytest (--pyargs: the tests ship with the
    package) with live progress; summary table, results.json and junit.xml in runs/<id>/."""
    config = _load(args)
    if not _runner_ready(config):
        return 1
    threading.Thread(target=_prefetch, name="prefetch", daemon=True).start()
    boards = _run_boards(config, args)
    run_dir = new_run_dir(config.run_dir)
    results_path = run_dir / "results.json"
    timing = {"pytest_spawned": time.time()}
    returncode, stopped_by = _run_matrix(config, args, boards, run_dir, results_path)
    timing["pytest_ended"] = time.time()
    if not results_path.exists():
        tail = (run_dir / "pytest.log").read_text().strip().splitlines()[-15:]
        print("the matrix did not run:\n  " + "\n  ".join(tail), file=sys.stderr)
        return 1
    from rig.report.summary import summarize

    rc = summarize(run_dir, results_path, config, boards, returncode, stopped_by,
                   allow_missing=args.allow_missing)
    _report_after_run(run_dir, config, args.history or [])
    timing["reported"] = time.time()
    (run_dir / TIMING_FILE).write_text(json.dumps(timing, indent=2) + "\n")
    return rc


def _prefetch() -> None:
    """The modules `hil run` needs once pytest has ended, read while it starts."""
    import rig.report.build
    import rig.report.summary  # noqa: F401


def _runner_ready(config: HilConfig) -> bool:
    """Whether the runner has what a run needs (`hil doctor`'s required rows, without their
    versions); if not, the table and what is missing are printed."""
    from rig.doctor import checks_for, format_table

    checks = checks_for(config, quick=True)
    missing = [c for c in checks if c.required and not c.ok]
    if missing:
        print(format_table(checks))
        print(f"\ncannot run: {', '.join(c.name for c in missing)} missing")
    return not missing


def _run_boards(config: HilConfig, args: argparse.Namespace) -> list[Board]:
    """The boards of this run: --hil's physical ones or the virtual ones, only those named by
    --board (an unknown name is a usage error)."""
    for name in args.board or []:
        config.board(name)
    kind = "esp32" if args.hil else "virtual"
    return [b for b in config.boards
            if b.kind == kind and (not args.board or b.name in args.board)]


def _workers(boards: list[Board], args: argparse.Namespace) -> int:
    return min(len(boards), args.jobs or len(boards))


def _pytest_argv(config: HilConfig, args: argparse.Namespace, boards: list[Board],
                run_dir: Path, results_path: Path) -> list[str]:
    """The matrix's pytest command line: the shipped tests, the run's own settings (not those
    of whatever project hil.toml sits in: no ini file, no conftest.py; PYTEST_ADDOPTS is left
    out of its environment by _run_matrix) and the rig's options from `hil run`'s."""
    tests = ["rig.cases.test_mqtt_modes", "rig.cases.test_https"]
    if any(b.chip_clock for b in boards):  # only those boards run it
        tests.append("rig.cases.test_clock")
    if not args.no_negative:
        tests.append("rig.cases.test_negative::test_refused")
    if not args.no_resilience:
        tests.append("rig.cases.test_resilience")
    argv = [sys.executable, "-m", "pytest", "--pyargs", *tests, "-p", "no:cacheprovider", "-q",
            "-p", "no:labgrid",  # its plugin replaces pytest-embedded's `target` fixture
            "-c", os.devnull, "--noconftest", "--rootdir", str(config.source.parent), *RUN_INI,
            "--hil-config", str(config.source), "--hil-run-dir", str(run_dir),
            "--hil-results", str(results_path), "--junitxml", str(run_dir / "junit.xml")]
    argv += ["--hil"] if args.hil else []
    # under --hil the plugin fails the session on boards that were not there (hooks.py); with
    # --allow-missing only the summary's verdict counts (rig/report/summary.py)
    argv += ["--hil-allow-missing"] if args.allow_missing else []
    argv += ["--hil-capture", args.capture]
    workers = _workers(boards, args)
    if workers > 1:  # pytest-xdist with --dist loadgroup (pyproject): one worker per board
        argv += ["-n", str(workers)]
    argv += ["--erase-nvs", "y"] if args.erase_nvs else []
    argv += ["--erase-all", "y"] if args.erase_all else []
    for name in args.board or []:
        argv += ["--board", name]
    for mode in args.mode or []:
        argv += ["--mode", mode]
    return argv


def _run_matrix(config: HilConfig, args: argparse.Namespace, boards: list[Board],
                run_dir: Path, results_path: Path) -> tuple[int, str]:
    """Say what runs, run the matrix's pytest (its output in pytest.log), give back the farm
    places it could not; returns pytest's exit code and the signal that stopped the run ('')."""
    argv = _pytest_argv(config, args, boards, run_dir, results_path)
    workers = _workers(boards, args)
    parallel = f", {workers} in parallel" if workers > 1 else ""
    print(f"run {run_dir.name}: {len(boards)} {'physical (esp32)' if args.hil else 'virtual'} "
          f"board(s){parallel} x modes {', '.join(args.mode or (*MODES, *WEB_MODES))}",
          flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["HIL_AGENT_VARIANT"] = os.environ.get("HIL_AGENT_VARIANT", "plain")
    with (run_dir / "pytest.log").open("w") as log:
        returncode, stopped_by = _run_pytest(argv, log, env, config.source.parent)
    if any(b.on_farm for b in boards):
        _release_farm_leftovers(config)
    if stopped_by:
        print(f"\nhil run stopped by {stopped_by}: brokers and boards were stopped; cells that "
              "had not finished are not counted", file=sys.stderr)
    return returncode, stopped_by


def _release_farm_leftovers(config: HilConfig) -> None:
    """Places the pytest run could not give back (killed: a second Ctrl-C) are released now,
    not by the next run (rig/boards/places.py: only what its claims prove the rig acquired)."""
    from rig.boards.farm import LabgridClient
    from rig.boards.places import has_claims, release_leftovers, state_dir

    try:
        if not has_claims(state_dir(), config.labgrid.address):
            return  # pytest gave everything back (the usual end)
        for note in release_leftovers(LabgridClient(config.labgrid.address), state_dir()):
            print(f"labgrid: {note}", file=sys.stderr)
    except (RigError, KeyboardInterrupt) as exc:
        print(f"labgrid: what the run left was not given back ({str(exc) or 'interrupted'}); "
              "the next run gives it back", file=sys.stderr)


def _report_after_run(run_dir: Path, config: HilConfig, history: list[str]) -> None:
    """The run's report.html and what changed since the previous comparable run; then the
    oldest run directories beyond [report] keep_runs go. A report that cannot be made is
    said, and never changes the run's verdict."""
    from rig.report.build import build, what_changed
    from rig.report.history import prune

    try:
        report = build(run_dir, config, [Path(h) for h in history])
        for line in what_changed(report):
            print(line)
    except Exception as exc:  # evidence, never the verdict: said, not raised
        print(f"report: not made: {type(exc).__name__}: {exc}", file=sys.stderr)
    try:
        for path in prune(config.run_dir, config.report.keep_runs, run_dir):
            print(f"removed old run {path.name} ([report] keep_runs = "
                  f"{config.report.keep_runs})")
    except OSError as exc:
        print(f"old runs not removed: {exc}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    """A run's report.html against the earlier runs; prints what changed."""
    from rig.report.build import ReportError, build, what_changed

    config = _load(args)
    run_dir = Path(args.run_dir) if args.run_dir else config.run_dir / "latest"
    if not (run_dir / "results.json").exists():
        raise ReportError(f"{run_dir}: no results.json (a run directory of `hil run`, or "
                          "pass one)")
    report = build(run_dir.resolve(), config, [Path(h) for h in args.history or []],
                   Path(args.out) if args.out else None)
    for line in what_changed(report):
        print(line)
    return 0


# After a stop was asked for: seconds until the next, firmer step (SIGINT again, SIGTERM, SIGKILL)
STOP_STEPS = ((signal.SIGINT, 10.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0))


def _run_pytest(argv: list[str], log: IO[str], env: dict[str, str],
                cwd: Path) -> tuple[int, str]:
    """Run the matrix's pytest in its own process group. Ctrl-C, SIGTERM and SIGHUP of `hil run`
    reach the pytest process (only it: its helper processes, e.g. pytest-embedded's log
    listener, must keep working while it tears down) as SIGINT, an orderly stop; if it has not
    ended after a while (an interrupt can be lost inside a finalizer), SIGINT again, then
    SIGTERM (which the plugin also turns into a stop), then SIGKILL to the whole group. A
    second signal to `hil run` kills the group at once. A kill -9 of `hil run` reaches pytest
    as SIGTERM (rig/local/children.py). Returns (pytest's exit code, the name of the signal
    that stopped us or '')."""
    proc = subprocess.Popen(argv, stdout=log, stderr=None, cwd=cwd, env=env,
                            start_new_session=True,
                            preexec_fn=die_with_parent(signal.SIGTERM, interruptible=True))
    stopped_by: list[str] = []

    def forward(signum: int, _frame: object) -> None:
        stopped_by.append(signal.Signals(signum).name)
        with contextlib.suppress(ProcessLookupError):
            if len(stopped_by) == 1:
                os.kill(proc.pid, signal.SIGINT)
            else:
                os.killpg(proc.pid, signal.SIGKILL)

    previous = {sig: signal.signal(sig, forward)  # an ignored one (nohup's SIGHUP) stays so
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        steps = list(STOP_STEPS)
        step_at = 0.0
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            if stopped_by and not step_at:
                step_at = time.monotonic() + steps[0][1]
            if stopped_by and steps and time.monotonic() >= step_at:
                sig, _ = steps.pop(0)
                with contextlib.suppress(ProcessLookupError):
                    if sig == signal.SIGKILL:
                        os.killpg(proc.pid, sig)
                    else:
                        os.kill(proc.pid, sig)
                step_at = time.monotonic() + (steps[0][1] if steps else 0.0)
        if stopped_by:  # pytest tore down; anything it left in its group goes too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return proc.returncode, (stopped_by[0] if stopped_by else "")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hil", description=__doc__.splitlines()[0] if __doc__
                                else None)
    p.add_argument("--config", "-c", help="hil.toml to use (default: $HIL_CONFIG or ./hil.toml)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check tools, packages, ports and hil.toml").set_defaults(
        func=cmd_doctor)
    pki = sub.add_parser("pki", help="generate or show the test PKI")
    pki.add_argument("pki_command", choices=["init", "show"])
    pki.set_defaults(func=cmd_pki)
    br = sub.add_parser("broker", help="run a Mosquitto for one mode in the foreground")
    br.add_argument("broker_command", choices=["up"])
    br.add_argument("--mode", choices=MODES, required=True)
    br.add_argument("--port", type=int, help="listen port (default: hil.toml, 0 = automatic)")
    br.set_defaults(func=cmd_broker_up)
    pf = sub.add_parser("preflight", help="prove each broker mode works from the host")
    pf.add_argument("--mode", action="append", choices=MODES)
    pf.set_defaults(func=cmd_preflight)
    run = sub.add_parser("run", help="the main job: every board of hil.toml in every mode")
    run.add_argument("--mode", action="append", choices=MODES + WEB_MODES)
    run.add_argument("--board", action="append", metavar="NAME", help="only these boards")
    run.add_argument("--hil", action="store_true", help="physical boards instead of virtual")
    run.add_argument("--jobs", "-j", type=_positive_int, metavar="N",
                     help="boards run in parallel, one pytest-xdist worker per board "
                          "(default: all selected boards; 1 = one after another)")
    run.add_argument("--capture", choices=("fail", "all", "off"), default="fail",
                     help="keep each failing cell's traffic with its TLS secrets embedded as "
                          "runs/<id>/<board>.<mode>.<case>.pcapng (all: every cell; off: "
                          "none; default: fail)")
    erase = run.add_mutually_exclusive_group()
    erase.add_argument("--erase-nvs", action="store_true",
                       help="erase each board's NVS before its first test (esp32: esptool, "
                            "reads the partition table with $IDF_PATH's gen_esp32part.py; "
                            "virtual: its state file)")
    erase.add_argument("--erase-all", action="store_true",
                       help="erase each board's whole flash and flash the build before its "
                            "first test")
    run.add_argument("--allow-missing", action="store_true",
                     help="a board or cell that did not run (not attached, no build, Wi-Fi "
                          "variables unset) does not fail the run as long as some board cell "
                          "ran and passed; the summary still names it")
    run.add_argument("--no-negative", action="store_true",
                     help="leave out the negative matrix (expected refusals)")
    run.add_argument("--no-resilience", action="store_true",
                     help="leave out the resilience cells (broker restart, silent link, QoS 1 "
                          "across an outage, certificate renewed: a few seconds per board "
                          "and mode)")
    run.add_argument("--history", action="append", metavar="DIR",
                     help="earlier runs' results for the report, besides hil.toml's run_dir "
                          "(a run directory or a directory of them, e.g. CI artifacts of "
                          "earlier nights); repeatable")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="a run's report.html against earlier runs")
    rep.add_argument("run_dir", nargs="?", help="the run directory (default: run_dir/latest)")
    rep.add_argument("--history", action="append", metavar="DIR",
                     help="earlier runs' results besides hil.toml's run_dir; repeatable")
    rep.add_argument("--out", help="where to write the page (default: <run dir>/report.html)")
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except RigError as exc:  # the rig's own errors, each with its exit code (rig/errors.py);
        print(f"hil: error: {exc}", file=sys.stderr)  # anything else is a bug: shown whole
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
