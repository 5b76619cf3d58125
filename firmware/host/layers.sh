#!/bin/sh
# Check the core's layering (components/agent/layers.txt) on compiled code:
# for every object of the core, the symbols it references (nm: undefined)
# and the symbols each object defines. A reference from file F to a function
# (or data) defined in file G is allowed when G's layer is lower than F's, or
# when it is the same layer, the layer is marked `down` and G is listed
# before F. Anything else is printed as
#   layers: keylog.c (leaf) calls agent_http_export_secrets() of http_server.c (service): a higher layer
# and the script exits 1. Also fails when a core source is missing from the
# table or listed twice, or the table names a file that has no object.
#
# usage: layers.sh <libagent.a or object files>...   (several: e.g. the native
#        and the esp build, whose #if branches differ; their references add up)
# Needs nm (binutils) and awk. The objects come from the build, so what is
# checked is what the compiler emitted: calls through macros and inline
# functions count in the file that expands them, calls through function
# pointers (the services' events table) do not count as calls.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
core=$(cd "$here/../components/agent" && pwd)
table="$core/layers.txt"
src="$core/src"
[ $# -gt 0 ] || { echo "usage: $0 <libagent.a | objects>..." >&2; exit 2; }
for f in "$@"; do
    [ -f "$f" ] || { echo "layers: $f: no such file (build first: build.sh)" >&2; exit 2; }
done
command -v nm >/dev/null 2>&1 || { echo "layers: nm (binutils) not found" >&2; exit 2; }

# nm -P -A: "<archive>[<member>]: <name> <type> [...]" or "<object>: <name> <type> [...]"
# -> "<file.c> <D|U> <name>" (D: a global definition, U: a reference)
syms=$(nm -P -A "$@" | awk '
    {
        where = $1; sub(/:$/, "", where)
        if (where ~ /\]$/) { sub(/^.*\[/, "", where); sub(/\]$/, "", where) }
        sub(/^.*\//, "", where); sub(/\.o(bj)?$/, "", where)
        type = $3
        if (type == "U") print where, "U", $2
        else if (type ~ /^[TDBRGSVW]$/) print where, "D", $2
    }' | sort -u)

printf '%s\n' "$syms" | awk -v table="$table" -v srcdir="$src" '
    BEGIN {
        nl = 0
        while ((getline line < table) > 0) {
            sub(/#.*/, "", line)
            n = split(line, w, /[ \t]+/)
            k = 0
            for (i = 1; i <= n; i++) if (w[i] != "") v[++k] = w[i]
            if (k == 0) continue
            if (k < 3 || (v[2] != "down" && v[2] != "none")) {
                printf "layers: %s: bad line \"%s\" (want: <layer> down|none <files...>)\n", table, line
                bad++
                continue
            }
            nl++
            lname[nl] = v[1]; own[nl] = v[2]
            for (i = 3; i <= k; i++) {
                if (v[i] in layer) {
                    printf "layers: %s is listed twice in %s\n", v[i], table
                    bad++
                }
                layer[v[i]] = nl; pos[v[i]] = i
            }
        }
        close(table)
        # every source file has a layer
        cmd = "cd \"" srcdir "\" && ls *.c"
        while ((cmd | getline f) > 0) {
            srcs[f] = 1
            if (!(f in layer)) {
                printf "layers: src/%s has no layer in %s\n", f, table
                bad++
            }
        }
        close(cmd)
        for (f in layer) if (!(f in srcs)) {
            printf "layers: %s names %s, which is not in src/\n", table, f
            bad++
        }
    }
    $2 == "D" { seen[$1] = 1; if (!($3 in def)) def[$3] = $1; next }
    $2 == "U" { seen[$1] = 1; nref++; rf[nref] = $1; rs[nref] = $3 }
    END {
        for (f in layer) if (!(f in seen)) {
            printf "layers: no object for %s in the files given\n", f
            bad++
        }
        edges = 0
        for (i = 1; i <= nref; i++) {
            f = rf[i]; s = rs[i]
            if (!(s in def)) continue     # libc, mbedTLS, the port: outside the core
            g = def[s]
            if (g == f) continue
            if (!(f in layer) || !(g in layer)) continue   # reported above
            edges++
            lf = layer[f]; lg = layer[g]
            if (lg < lf) continue
            if (lg == lf && own[lf] == "down" && pos[g] < pos[f]) continue
            if (lg > lf) why = "a higher layer"
            else if (own[lf] == "none") why = "the same layer, whose files never call each other"
            else why = "listed after it in the same layer (a leaf / command file calls only files before it)"
            printf "layers: %s (%s) calls %s() of %s (%s): %s\n", f, lname[lf], s, g, lname[lg], why
            up++
        }
        if (bad || up) {
            printf "layers: FAILED: %d upward or sideways reference(s), %d table problem(s); the layers are in %s\n", up, bad, table
            exit 1
        }
        line = ""
        for (i = 1; i <= nl; i++) line = line (i > 1 ? " <- " : "") lname[i]
        printf "layers: ok: %s (%d cross-file references, all downward)\n", line, edges
    }'
