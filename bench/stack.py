#!/usr/bin/env python3
"""Worst-case stack of the agent task, from GCC's static stack data on the rv32 build.

Reads the `-fstack-usage -fcallgraph-info=su` output (.ci files: call graph + frame sizes) of
the rv32 build (firmware/host/rv32/check.sh: the whole core compiled for RV32IMAC, the
ESP32-C3's ISA, and mbedTLS 3.6 with ESP-IDF's configuration), builds the call graph from the
ESP-IDF port's agent task (firmware/main/main.c: agent_new, agent_run, agent_delete) and
prints the deepest call path with each frame, for the whole task and for each handshake
(MQTT client in psk / ca / mutual mode, the HTTPS server), then a recommended task stack.

What static analysis cannot see, and what this script does about it (printed with the result):
- Indirect calls (function pointers). Each call site's pointer is read from the source line
  GCC names and looked up in POINTERS below: the known targets of that pointer (the BIO the
  core sets, the DRBG, mbedTLS's cipher/pk/checksum tables, ...), bounded by the deepest
  candidate. Pointers the core never sets (SNI, session cache, tickets, timers, verify
  callback) cost nothing. A site that is not in the table is listed as unresolved.
- Functions outside the build (libc, lwIP, the ESP-IDF port's callbacks in firmware/main)
  have no .ci: they get the ASSUMED costs in EXTERNAL / PORT below (stated, not measured).
- Recursion (a cycle in the graph) is cut at the repeated function and reported.
- Xtensa (classic ESP32): its windowed ABI gives each frame a 16-byte base save area and,
  with call8, 16 more bytes; frames are 16-byte aligned. The Xtensa figure is the same path
  with every frame rounded up to 16 and 32 bytes added per frame (an upper estimate: rv32
  frames already hold the saved registers that Xtensa keeps in its register windows).

Run: python3 bench/stack.py [--build-dir DIR] [--no-build] [--margin 0.33] [--quiet]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from footprint import build_opt, core_files, ensure_build, rv32_build_dir

# ---- what static analysis cannot see -----------------------------------------------------

# Function pointers: (file of the call site, pointer name) -> (targets: regexes over function
# names as the .ci files spell them, "file.c:func" for static functions; why). An empty target
# list means "never set by the core" (costs nothing). The file "*" matches any call site.
POINTERS: dict[tuple[str, str], tuple[list[str], str]] = {
    ("ssl_msg.c", "f_send"): ([r"/conn\.c:bio_send$", r"/http_server\.c:bio_send$"],
                             "mbedtls_ssl_set_bio (conn.c, http_server.c)"),
    ("ssl_msg.c", "f_recv"): ([r"/conn\.c:bio_recv$", r"/http_server\.c:bio_recv$"],
                             "mbedtls_ssl_set_bio (conn.c, http_server.c)"),
    ("ssl_msg.c", "f_recv_timeout"): ([], "NULL in mbedtls_ssl_set_bio"),
    ("*", "f_rng"): ([r"^mbedtls_ctr_drbg_random$", r"^mbedtls_hmac_drbg_random$"],
                     "mbedtls_ssl_conf_rng(mbedtls_ctr_drbg_random); deterministic ECDSA "
                     "blinds with HMAC-DRBG"),
    ("ctr_drbg.c", "f_entropy"): ([r"/rng\.c:port_entropy$", r"^mbedtls_entropy_func$"],
                                  "the core's DRBG (rng.c), PSA's DRBG"),
    ("ecp.c", "modp"): ([r"/ecp_curves\.c:ecp_mod_\w+$"], "fast reduction per curve"),
    ("platform.c", "mbedtls_calloc_func"): ([r"^calloc$"], "MBEDTLS_PLATFORM_MEMORY default"),
    ("platform.c", "mbedtls_free_func"): ([r"^free$"], "MBEDTLS_PLATFORM_MEMORY default"),
    ("platform_util.c", "memset_func"): ([r"^memset$"], "volatile pointer to memset"),
    ("mqtt.c", "done"): ([r"/final\.c:op_done$"], "agent_command_events (final.c)"),
    ("mqtt.c", "pending"): ([r"/final\.c:op_pending$"], "agent_command_events (final.c)"),
    ("wifi.c", "done"): ([r"/final\.c:op_done$"], "agent_command_events (final.c)"),
    ("wifi.c", "pending"): ([r"/final\.c:op_pending$"], "agent_command_events (final.c)"),
    ("*", "mbedtls_time"): ([r"/agent\.c:board_time$"],
                            "MBEDTLS_PLATFORM_TIME_ALT hook (agent.c); ESP-IDF: newlib time()"),
    ("asn1parse.c", "cb"): ([r"/asn1parse\.c:asn1_get_sequence_of_cb$"],
                            "mbedtls_asn1_get_sequence_of"),
    ("x509_crt.c", "cb"): ([], "extension callback: NULL (mbedtls_x509_crt_parse)"),
    ("x509_crt.c", "f_vrfy"): ([], "no verify callback (mbedtls_ssl_conf_verify unused)"),
    ("psa_crypto_random.c", "entropy_init"): ([r"^mbedtls_entropy_init$"], "PSA's entropy"),
    ("psa_crypto_random.c", "entropy_free"): ([r"^mbedtls_entropy_free$"], "PSA's entropy"),
    ("ssl_tls.c", "update_checksum"): ([r"/ssl_tls\.c:ssl_update_checksum_\w+$"],
                                       "handshake transcript hash"),
    ("ssl_msg.c", "update_checksum"): ([r"/ssl_tls\.c:ssl_update_checksum_\w+$"],
                                       "handshake transcript hash"),
    ("ssl_client.c", "update_checksum"): ([r"/ssl_tls\.c:ssl_update_checksum_\w+$"],
                                          "handshake transcript hash"),
    ("*", "calc_verify"): ([r"/ssl_tls\.c:ssl_calc_verify_tls_\w+$"], "per suite hash"),
    ("*", "calc_finished"): ([r"/ssl_tls\.c:ssl_calc_finished_tls_\w+$"], "per suite hash"),
    ("ssl_tls.c", "tls_prf"): ([r"/ssl_tls\.c:tls_prf_\w+$"], "per suite PRF"),
    ("cipher.c", "add_padding"): ([r"/cipher\.c:add_\w+_padding$"], "CBC padding"),
    ("cipher.c", "get_padding"): ([r"/cipher\.c:get_\w+_padding$"], "CBC padding"),
    # cipher_wrap.c's base tables (AES, ARIA, GCM, CCM): member -> *_<what>_wrap functions
    **{("cipher.c", f"{m}_func"): ([rf"/cipher_wrap\.c:\w*{w}\w*$"], "cipher_wrap.c tables")
       for m, w in [("ecb", "ecb"), ("cbc", "cbc"), ("cfb", "cfb"), ("ofb", "ofb"),
                    ("ctr", "ctr"), ("xts", "xts"), ("stream", "stream"),
                    ("setkey_enc", "setkey_enc"), ("setkey_dec", "setkey_dec"),
                    ("ctx_alloc", "ctx_alloc"), ("ctx_free", "ctx_free")]},
    # pk_wrap.c's info tables (RSA, EC key, ECDSA, RSA-alt): member -> *_<what> functions
    **{("pk.c", m): ([rf"/pk_wrap\.c:\w*{w}$"], "pk_wrap.c tables")
       for m, w in [("verify_func", "verify_wrap"), ("sign_func", "sign_wrap"),
                    ("decrypt_func", "decrypt_wrap"), ("encrypt_func", "encrypt_wrap"),
                    ("check_pair_func", "check_pair(_wrap)?"), ("get_bitlen", "get_bitlen"),
                    ("can_do", "can_do"), ("ctx_alloc_func", "alloc_wrap"),
                    ("ctx_free_func", "free_wrap")]},
    ("entropy.c", "f_source"): ([r"^mbedtls_hardware_poll$"],
                                "MBEDTLS_ENTROPY_HARDWARE_ALT, the only source"),
    ("hmac_drbg.c", "f_entropy"): ([], "deterministic ECDSA seeds HMAC-DRBG from a buffer"),
    ("pk_wrap.c", "key_len_func"): ([], "no RSA-alt keys"),
    ("pk_wrap.c", "decrypt_func"): ([], "no RSA-alt keys"),
    ("pk_wrap.c", "sign_func"): ([], "no RSA-alt keys"),
    ("pk.c", "debug_func"): ([], "mbedtls_pk_debug: MBEDTLS_DEBUG_C only"),
    ("x509_csr.c", "cb"): ([], "no CSR parsing"),
    ("psa_util.c", "fallback_f"): ([r"/psa_util\.c:\w*status_to_mbedtls\w*$",
                                    r"^psa_\w*status_to_mbedtls$"], "PSA error mapping"),
    ("*", "f_export_keys"): ([], "no key-export callback on the board"),
    ("*", "f_get_timer"): ([], "no timer callbacks (TLS, not DTLS)"),
    ("*", "f_set_timer"): ([], "no timer callbacks (TLS, not DTLS)"),
    ("*", "f_psk"): ([], "no PSK callback (mbedtls_ssl_conf_psk)"),
    ("*", "f_sni"): ([], "no SNI callback"),
    ("*", "f_cert_cb"): ([], "no certificate callback"),
    ("*", "f_get_cache"): ([], "no session cache"),
    ("*", "f_set_cache"): ([], "no session cache"),
    ("*", "f_ticket_write"): ([], "no session tickets"),
    ("*", "f_ticket_parse"): ([], "no session tickets"),
}

# Functions outside the build: ASSUMED stack (bytes, rv32) including what they call. ESP-IDF's
# libc is newlib (full printf: CONFIG_NEWLIB_NANO_FORMAT=n), its sockets lwIP (the call runs
# in the caller's task up to the tcpip thread's mailbox).
EXTERNAL: list[tuple[str, int, str]] = [
    (r"^v?snprintf$", 1024, "newlib's full vfprintf (_svfprintf_r + __dtoa-free paths)"),
    (r"^(select|send|recv|connect|accept|bind|listen|shutdown|socket|setsockopt|getsockopt"
     r"|getsockname|getpeername|fcntl|close)$", 512, "lwIP socket call (lwip_*, netconn API)"),
    (r"^(getaddrinfo|freeaddrinfo|gai_strerror)$", 640, "lwIP netdb (DNS via the tcpip task)"),
    (r"^(inet_ntop|htons|ntohs|htonl|ntohl)$", 96, "lwIP address helpers"),
    (r"^(malloc|calloc|free|realloc)$", 256, "ESP-IDF heap_caps + multi_heap (with lock)"),
    (r"^(mem|str)\w+$", 48, "newlib/ROM string functions"),
    (r"^(gmtime|gmtime_r|time|strerror)$", 192, "newlib"),
    (r"^__\w+$", 32, "libgcc helper"),
    (r"^mbedtls_ms_time$", 64, "ESP-IDF: esp_timer_get_time"),
    (r"^mbedtls_hardware_poll$", 128, "ESP-IDF: esp_fill_random"),
]

# The ESP-IDF port's callbacks (firmware/main/*.c, not built here): ASSUMED stack per member
# of agent_port_t, including the ESP-IDF calls they make.
PORT: dict[str, tuple[int, str]] = {
    "console_read": (512, "uart_read_bytes"),
    "console_write": (512, "uart_write_bytes"),
    "storage_load": (1536, "nvs_open + nvs_get_blob"),
    "storage_save": (1536, "nvs_set_blob + nvs_commit"),
    "wifi_begin": (1536, "esp_wifi_set_config + esp_wifi_connect"),
    "random": (192, "esp_fill_random"),
}
PORT_MEMBERS = {"now_ms", "clock_get", "clock_set", "storage_load", "storage_save", "random",
                "network_up", "console_read", "console_write", "reboot", "free_heap",
                "wifi_begin", "wifi_last_reason", "wifi_status", "next_event"}
PORT_DEFAULT = (256, "small accessor (esp_timer, heap size, event queue, status text)")
# agent_task itself (main.c): an agent_port_t (68 bytes on rv32) + locals + saved registers
AGENT_TASK_FRAME = 128
# RTOS overhead inside a task's stack: the context saved on an interrupt/switch (Xtensa
# XT_STK_FRMSZ + the coprocessor area; RISC-V RvExcFrame), ESP-IDF's stack-overflow canary
RTOS_OVERHEAD = 768
ENTRIES = ["agent_new", "agent_run", "agent_delete"]

# The scenarios: the deepest path through each function in `through` (in order), avoiding
# functions whose names match `avoid`. Every scenario avoids renegotiation: mbedTLS has it
# compiled in (ESP-IDF's default) but the core never enables it (mbedtls_ssl_conf_renegotiation
# is left at MBEDTLS_SSL_RENEGOTIATION_DISABLED), so mbedtls_ssl_read/write never start a
# handshake; without this cut every record write would "reach" the whole handshake.
NEVER = r"renegotiat"
# Calls the core never makes happen: (caller, callee, why). mbedtls_ssl_read/write start a
# handshake when none has completed; the core calls them only once it has (conn.c: CONN_OPEN;
# http_server.c: after the handshake stage).
CUT_EDGES: list[tuple[str, str, str]] = [
    ("mbedtls_ssl_write", "mbedtls_ssl_handshake", "write only after the handshake"),
    ("mbedtls_ssl_read", "mbedtls_ssl_handshake", "read only after the handshake"),
]
SCENARIOS: list[tuple[str, list[str], str | None]] = [
    ("agent task outside TLS handshakes", [], r"^mbedtls_ssl_handshake$"),
    ("MQTT client handshake, psk", ["conn_open_step", "mbedtls_ssl_handshake_client_step"],
     r"server_step|x509|pk_|ecdsa|rsa|ssl_parse_certificate|certificate_verify"),
    ("MQTT client handshake, ca", ["conn_open_step", "mbedtls_ssl_handshake_client_step"],
     r"server_step|pk_sign|ssl_write_certificate_verify|ecdsa_sign|rsa_sign|rsa_private|psk"),
    ("MQTT client handshake, mutual", ["conn_open_step", "mbedtls_ssl_handshake_client_step"],
     r"server_step|psk"),
    ("HTTPS server handshake", ["agent_http_service", "mbedtls_ssl_handshake_server_step"],
     r"client_step|psk"),
]

NODE = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"(?: label: "([^"]*)")?')
FRAME = re.compile(r"(\d+) bytes \(([^)]*)\)")
INDIRECT = "__indirect_call"


@dataclass
class Graph:
    frames: dict[str, int] = field(default_factory=dict)
    dynamic: set[str] = field(default_factory=set)
    calls: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notes: dict[str, str] = field(default_factory=dict)  # pseudo node -> why
    unresolved: set[str] = field(default_factory=set)  # call sites
    recursion: set[tuple[str, str]] = field(default_factory=set)


def short(name: str) -> str:
    """`/path/to/file.c:func` -> `func (file.c)`; global names unchanged."""
    if ":" in name and not name.startswith(("port.", "ext:")):
        path, func = name.rsplit(":", 1)
        return f"{func} ({Path(path).name})"
    return name


def pointer_names(site: str) -> tuple[str, list[str]]:
    """(file name, candidate pointer names) of the indirect call at `site` ("path:line:col"):
    every `name(`, `->name(` and `(*name)(` on the source line from the column GCC names on
    (nested calls such as `MBEDTLS_MPI_CHK(f_rng(...))` give several candidates)."""
    path, line, col = site.rsplit(":", 2)
    try:
        text = Path(path).read_text(errors="replace").splitlines()[int(line) - 1]
    except (OSError, IndexError, ValueError):
        return Path(path).name, []
    start = max(int(col) - 2, 0)
    names = [m.group(1) or m.group(2) for m in
             re.finditer(r"\(\s*\*\s*(\w+)\s*\)\s*\(|(\w+)\s*\(", text[start:])]
    return Path(path).name, names


def pointer_targets(fname: str, ptrs: list[str]) -> tuple[str, list[str]] | None:
    """The first of `ptrs` that POINTERS knows for this file: (name, target patterns)."""
    for ptr in ptrs:
        for key in ((fname, ptr), ("*", ptr)):
            if key in POINTERS:
                return ptr, POINTERS[key][0]
    return None


def load(build: Path) -> Graph:
    g = Graph()
    cis = core_files(build, ".ci") + sorted((build / "mbedtls").rglob("*.ci"))
    indirect: list[tuple[str, str]] = []
    for ci in cis:
        for line in ci.read_text(errors="replace").splitlines():
            m = NODE.match(line)
            if m:
                parts = m.group(2).split("\\n")
                fm = FRAME.match(parts[2]) if len(parts) >= 3 else None
                if fm:
                    g.frames[m.group(1)] = int(fm.group(1))
                    if fm.group(2) != "static":
                        g.dynamic.add(m.group(1))
                continue
            m = EDGE.match(line)
            if m:
                src, dst, site = m.group(1), m.group(2), m.group(3) or ""
                if dst == INDIRECT:
                    indirect.append((src, site))
                else:
                    g.calls[src].add(dst)
    names = list(g.frames)
    for src, site in indirect:
        fname, ptrs = pointer_names(site) if site else ("?", [])
        port_ptr = next((p for p in ptrs if p in PORT or p in PORT_MEMBERS), None)
        if "/components/agent/" in site and port_ptr:
            node = f"port.{port_ptr}"
            cost, why = PORT.get(port_ptr, PORT_DEFAULT)
            g.frames[node] = cost
            g.notes[node] = f"ESP-IDF port callback, ASSUMED {cost} B: {why}"
            g.calls[src].add(node)
            continue
        found = pointer_targets(fname, ptrs)
        if found is None:
            where = f"{fname}:{site.rsplit(':', 2)[1]}" if site else "?"
            g.unresolved.add(f"{short(src)} at {where} ({', '.join(ptrs[:3]) or '?'})")
            continue
        for pat in found[1]:
            exact = re.fullmatch(r"\^(\w+)\$", pat)
            if exact:  # a function that may be outside the build (EXTERNAL costs it)
                g.calls[src].add(exact.group(1))
                continue
            for n in names:
                if re.search(pat, n):
                    g.calls[src].add(n)
    # functions without a frame (outside the build) -> EXTERNAL
    for callees in list(g.calls.values()):
        for c in list(callees):
            if c in g.frames:
                continue
            for pat, cost, why in EXTERNAL:
                if re.search(pat, c):
                    g.frames[c] = cost
                    g.notes[c] = f"outside the build, ASSUMED {cost} B: {why}"
                    break
            else:
                g.frames[c] = 0
                g.notes[c] = "outside the build, UNKNOWN (counted as 0)"
    for caller, callee, _why in CUT_EDGES:
        g.calls[caller].discard(callee)
    g.frames["agent_task"] = AGENT_TASK_FRAME
    g.notes["agent_task"] = (f"main.c's task function, ASSUMED {AGENT_TASK_FRAME} B "
                             "(agent_port_t + locals)")
    g.calls["agent_task"] = set(ENTRIES)
    return g


def deepest(g: Graph, root: str, through: list[str], avoid: str | None,
            xtensa: bool = False) -> tuple[int, list[str]]:
    """Deepest path from root through the functions of `through` (in order)."""
    avoid_re = re.compile(f"{NEVER}|{avoid}" if avoid else NEVER)

    def cost(f: str) -> int:
        b = g.frames.get(f, 0)
        return (math.ceil(b / 16) * 16 + 32) if xtensa and b else b

    memo: dict[tuple[str, int], tuple[int, list[str]] | None] = {}
    onstack: set[str] = set()

    def walk(f: str, k: int) -> tuple[int, list[str]] | None:
        if k < len(through) and re.search(rf"(^|:){re.escape(through[k])}$", f):
            k += 1
        key = (f, k)
        if key in memo:
            return memo[key]
        onstack.add(f)
        best: tuple[int, list[str]] | None = None
        for c in sorted(g.calls.get(f, ())):
            if avoid_re and avoid_re.search(c):
                continue
            if c in onstack:
                g.recursion.add((f, c))
                continue
            r = walk(c, k)
            if r and (best is None or r[0] > best[0]):
                best = r
        onstack.discard(f)
        if best is None:
            res = (cost(f), [f]) if k == len(through) else None
        else:
            res = (cost(f) + best[0], [f, *best[1]])
        memo[key] = res
        return res

    r = walk(root, 0)
    if r is None:
        raise SystemExit(f"stack: no path from {root} through {' -> '.join(through)}")
    return r


def print_path(g: Graph, total: int, path: Iterable[str]) -> None:
    for f in path:
        mark = " (dynamic)" if f in g.dynamic else ""
        note = f"   [{g.notes[f]}]" if f in g.notes else ""
        print(f"  {g.frames.get(f, 0):>6}  {short(f)}{mark}{note}")
    print(f"  {total:>6}  total (rv32)")


def round_kib(n: float) -> int:
    return math.ceil(n / 1024) * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", help="rv32 build directory (default: as check.sh)")
    ap.add_argument("--no-build", action="store_true", help="use the build as it is")
    ap.add_argument("--margin", type=float, default=0.33,
                    help="safety margin for the recommendation (default 0.33)")
    ap.add_argument("--quiet", action="store_true", help="only the summary lines")
    args = ap.parse_args()
    build = rv32_build_dir(args.build_dir)
    if not args.no_build:
        ensure_build(build)
    g = load(build)

    results: list[tuple[str, int, int]] = []
    for title, through, avoid in SCENARIOS:
        total, path = deepest(g, "agent_task", through, avoid)
        xt, _ = deepest(g, "agent_task", through, avoid, xtensa=True)
        results.append((title, total, xt))
        if not args.quiet:
            print(f"== {title}: {total} B on rv32 ({len(path)} frames), Xtensa estimate {xt} B")
            print_path(g, total, path)
            print()
    print(f"{'deepest path':<38}{'rv32':>8}{'Xtensa est.':>13}")
    for title, total, xt in results:
        print(f"{title:<38}{total:>8}{xt:>13}")
    worst_rv, worst_xt = max(r[1] for r in results), max(r[2] for r in results)
    rec_rv = round_kib((worst_rv + RTOS_OVERHEAD) * (1 + args.margin))
    rec_xt = round_kib((worst_xt + RTOS_OVERHEAD) * (1 + args.margin))
    print()
    print(f"estimate: {worst_rv} B (rv32, ESP32-C3 and other RISC-V chips), {worst_xt} B "
          f"(Xtensa windowed ABI: ESP32, -S2, -S3)")
    print(f"recommended CONFIG_HIL_AGENT_TASK_STACK_SIZE: (estimate + {RTOS_OVERHEAD} B RTOS "
          f"overhead) x {1 + args.margin:.2f}, rounded up to 1 KiB: {rec_rv} (RISC-V), "
          f"{rec_xt} (Xtensa); one default for all chips: {max(rec_rv, rec_xt)}")
    floor = round_kib((worst_xt + RTOS_OVERHEAD) * 1.1)
    print(f"Kconfig range minimum ((the estimate + overhead) x 1.10, Xtensa; a static estimate "
          f"leaves the chip's crypto drivers out): {floor}")
    print()
    print("approximated:")
    print(f"  - {sum(1 for n in g.notes if n.startswith('port.'))} ESP-IDF port callbacks and "
          f"{sum(1 for n in g.notes if not n.startswith(('port.', 'agent_task')))} functions "
          "outside the build have assumed costs (see [ASSUMED] in the paths, EXTERNAL/PORT)")
    print("  - indirect calls bounded by their deepest known target (POINTERS); the graph is "
          "not context-sensitive (e.g. a DRBG reseed counts both entropy callbacks)")
    print("  - cut as infeasible: renegotiation (never enabled), "
          + "; ".join(f"{a} -> {b} ({w})" for a, b, w in CUT_EDGES)
          + "; each handshake scenario keeps to its own endpoint")
    if g.unresolved:
        print(f"  - {len(g.unresolved)} indirect call site(s) not in POINTERS, counted as 0:")
        for s in sorted(g.unresolved):
            print(f"      {s}")
    if g.recursion:
        print(f"  - {len(g.recursion)} recursive call(s) cut (each counted once):")
        for a, b in sorted(g.recursion)[:10]:
            print(f"      {short(a)} -> {short(b)}")
    if g.dynamic:
        print(f"  - {len(g.dynamic)} function(s) with dynamic frames (alloca/VLA): "
              "GCC's bound used")
    print(f"  - frames are rv32 {build_opt(build) or '(unknown flags)'} with software crypto "
          "(the ESP32's AES/SHA/MPI hardware drivers replace some of these functions); "
          "ESP-IDF's default is -Og (CONFIG_COMPILER_OPTIMIZATION_DEBUG): try "
          "HIL_RV32_OPT=-Og firmware/host/rv32/check.sh + --build-dir")
    return 0


if __name__ == "__main__":
    sys.exit(main())
