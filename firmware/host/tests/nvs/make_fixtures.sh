#!/bin/sh
# Re-make the NVS partition images the unit tests (test_nvs_image.c) and the
# fuzzer's seed corpus (fuzz/corpus/fuzz_nvs_image/) use, with Espressif's own
# generator. Not run by the build: the images are committed, so the C tests
# need no Python. Run it only to change a fixture, then update the tests.
#
# usage: firmware/host/tests/nvs/make_fixtures.sh [python]
#   python: an interpreter with the generator installed (default: python3), e.g.
#     python3 -m venv /tmp/nvsgen && /tmp/nvsgen/bin/pip install esp-idf-nvs-partition-gen
#     firmware/host/tests/nvs/make_fixtures.sh /tmp/nvsgen/bin/python
# Made with esp-idf-nvs-partition-gen 0.3.0.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-python3}
corpus=$here/../../fuzz/corpus/fuzz_nvs_image
cd "$here"  # the CSVs name their `file` values relative to here

# inputs of `file` rows: long.txt (a 1500-byte string), big.dat (6000 bytes,
# byte i = (i * 31 + (i >> 7)) & 0xff: larger than a page, a multipage blob)
"$py" -c '
import sys
line = "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
text = (line * 24)[:1500]
open("long.txt", "w", newline="\n").write(text)
open("big.dat", "wb").write(bytes((i * 31 + (i >> 7)) & 0xff for i in range(6000)))
'
gen() { "$py" -m esp_idf_nvs_partition_gen generate "$@" >/dev/null; }
gen settings.csv settings_v2.bin 0x6000           # V2 (the default): multipage blobs
gen legacy.csv legacy_v1.bin 0x3000 --version 1   # V1: single-page blobs (type 0x41)
gen provision.csv provision_v2.bin 0x3000         # namespace hil as an esp-mqtt app reads it
mkdir -p "$corpus"
cp settings_v2.bin "$corpus/settings_v2"
cp legacy_v1.bin "$corpus/legacy_v1"
head -c 4096 legacy_v1.bin >"$corpus/legacy_v1_page0" # its one used page: a fast seed
gen small.csv "$corpus/small_v2.bin" 0x3000
mv "$corpus/small_v2.bin" "$corpus/small_v2"
echo "made: $here/settings_v2.bin $here/legacy_v1.bin $here/provision_v2.bin and the seeds in $corpus"
