#!/usr/bin/env bash
# shellcheck disable=SC2317 # the lint_* functions are called as "lint_$part"
# Static checks that hold the line the style guide draws (STYLE.md 1b, and
# "clang-format file at the root"). Not yet part of scripts/test.sh: the
# tree does not pass it yet.
#
# Usage: scripts/lint.sh [--fix] [format|tidy|layers|all]...   (default: all)
#   format  clang-format --dry-run -Werror over src/ and tests/unit/ (*.c, *.h);
#           with --fix (format only), rewrite the files in place: the one-off reformat
#   tidy    clang-tidy (.clang-tidy at the root) over src/*.c and the headers they
#           include, with build-lint/compile_commands.json; any finding fails
#   layers  an #include of ours must name the file's own layer or one to its left in
#           lib <- store <- config <- monitor <- detect <- analyze <- recover <- api <- daemon
#           (ctl: lib only; demo: none of ours)
# Exit status: 0 clean, 1 findings, 2 usage or missing tool.
# (Each part runs in an "||" list, where set -e does not reach: the parts
# check their own commands.)
set -euo pipefail
cd "$(dirname "$0")/.."

LAYERS=(lib store config monitor detect analyze recover api daemon)

usage()
{
    sed -n '/^# Usage:/,/^# Exit status/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# clang-format and clang-tidy output and options differ between majors: the
# files at the root are written for 14 (Debian bookworm). Prefer the
# versioned binary, let CLANG_FORMAT / CLANG_TIDY override.
tool()
{
    local var=$1 name=$2 bin
    bin=${!var:-}
    if [ -z "$bin" ]; then
        bin=$(command -v "$name-14" || command -v "$name" || true)
    fi
    if [ -z "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
        echo "lint.sh: $name not found or not working: ${bin:-none} (scripts/deps.sh installs it)" >&2
        return 2
    fi
    if ! "$bin" --version | grep -q 'version 14\.'; then
        echo "lint.sh: warning: $bin is not version 14; results may differ" >&2
    fi
    echo "$bin"
}

sources()
{
    find "$@" -name '*.[ch]' -type f | LC_ALL=C sort
}

lint_format()
{
    local cf files=() bad=() f n total=0
    cf=$(tool CLANG_FORMAT clang-format) || return 2
    mapfile -t files < <(sources src tests/unit)
    if [ "$fix" = 1 ]; then
        "$cf" -i "${files[@]}" || return 2
        echo "format: rewrote ${#files[@]} files" >&2
        return 0
    fi
    for f in "${files[@]}"; do
        # --ferror-limit: the first few places per file say enough.
        "$cf" --dry-run -Werror --ferror-limit=3 "$f" || bad+=("$f")
    done
    if [ ${#bad[@]} -gt 0 ]; then
        echo "format: ${#bad[@]} of ${#files[@]} files need clang-format (lines it would change):" >&2
        for f in "${bad[@]}"; do
            n=$("$cf" "$f" | diff "$f" - | grep -c '^<' || true)
            total=$((total + n))
            printf '%6d %s\n' "$n" "$f" >&2
        done
        printf '%6d in all; scripts/lint.sh --fix format rewrites them\n' "$total" >&2
        return 1
    fi
    echo "format: ${#files[@]} files clean" >&2
}

lint_tidy()
{
    local ct db=build-lint out=build-lint/tidy files=() missing=() f rc=0
    ct=$(tool CLANG_TIDY clang-tidy) || return 2
    # Debug: without NDEBUG the analyzer sees our assert()s and takes them as given.
    cmake -S . -B "$db" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
        -DRECOVERD_TESTS=OFF >/dev/null || return 2
    mapfile -t files < <(find src -name '*.c' -type f | LC_ALL=C sort)
    # A source the build does not compile here (postgres.c without libpq) would be
    # skipped silently: refuse instead.
    for f in "${files[@]}"; do
        grep -q "\"file\": \"$PWD/$f\"" "$db/compile_commands.json" || missing+=("$f")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "tidy: not in $db/compile_commands.json (missing build deps? scripts/deps.sh):" >&2
        printf '  %s\n' "${missing[@]}" >&2
        return 2
    fi
    rm -rf "$out"
    mkdir -p "$out"
    # One process per file, each output to its own file so that they do not
    # interleave. The flags are gcc's: clang does not know some of them, and
    # compiler warnings are the gcc build's business (-Werror there).
    # shellcheck disable=SC2016 # $1..$4 are the inner shell's
    printf '%s\n' "${files[@]}" | xargs -P"$(nproc)" -I{} sh -c \
        '"$1" -p "$2" --quiet --extra-arg=-Wno-unknown-warning-option \
             --extra-arg=-Wno-error "$3" >"$4/$(echo "$3" | tr / _).log" 2>&1 \
             || echo "$3" >>"$4/failed"' \
        sh "$ct" "$db" {} "$out"
    # A header's finding is reported once per source including it: print each once.
    cat "$out"/*.log | grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error):' |
        sed "s|^$PWD/||" | LC_ALL=C sort -u | LC_ALL=C sort -t: -k1,1 -k2,2n -k3,3n \
        >"$out/findings" || true
    if [ -s "$out/findings" ]; then
        cat "$out/findings"
        echo "tidy: $(wc -l <"$out/findings") findings (full output: $out/*.log):" >&2
        cut -d: -f1 "$out/findings" | sort | uniq -c | sort -rn >&2
        rc=1
    elif [ -s "$out/failed" ]; then
        echo "tidy: clang-tidy failed on:" >&2
        sed 's/^/  /' "$out/failed" >&2
        rc=1
    else
        echo "tidy: ${#files[@]} sources clean" >&2
    fi
    return "$rc"
}

lint_layers()
{
    local -a files
    mapfile -t files < <(sources src)
    # "x/y.h" always; <x/y.h> too when x is one of our folders (src/ is on the
    # include path, so the angle form would slip past a check of quotes only).
    # "y.h" names a file next to the includer: its own layer.
    awk -v order="${LAYERS[*]}" -v folders="$(find src -mindepth 1 -maxdepth 1 -type d -printf '%f ')" '
        BEGIN {
            n = split(order, layer, " ")
            for (i = 1; i <= n; i++) rank[layer[i]] = i
            split(folders, f, " ")
            for (i in f) ours[f[i]] = 1
        }
        FNR == 1 {
            own = FILENAME; sub(/^src\//, "", own); sub(/\/.*/, "", own)
        }
        /^[ \t]*#[ \t]*include[ \t]*["<]/ {
            s = $0
            sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
            angle = substr(s, 1, 1) == "<"
            s = substr(s, 2)
            s = substr(s, 1, index(s, angle ? ">" : "\"") - 1)
            if (index(s, "/") == 0) next
            top = s; sub(/\/.*/, "", top)
            if (angle && !(top in ours)) next
            if (top == own) next
            if (own == "ctl") ok = top == "lib"
            else if (own == "demo") ok = 0
            else ok = (own in rank) && (top in rank) && rank[top] < rank[own]
            if (!ok) {
                printf "%s:%d: upward include %s (%s may not include %s/)\n", \
                    FILENAME, FNR, s, own, top
                bad++
            }
        }
        END {
            if (bad) {
                printf "layers: %d upward includes (STYLE.md 1b)\n", bad > "/dev/stderr"
                exit 1
            }
            print "layers: no upward include" > "/dev/stderr"
        }' "${files[@]}"
}

fix=0
parts=()
for a in "$@"; do
    case $a in
    --fix) fix=1 ;;
    format | tidy | layers) parts+=("$a") ;;
    all) parts+=(format tidy layers) ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
done
[ ${#parts[@]} -gt 0 ] || parts=(format tidy layers)

scripts/deps.sh # quick and silent when everything is there

status=0
for p in "${parts[@]}"; do
    "lint_$p" || { r=$?; [ $r -gt $status ] && status=$r; }
done
exit $status
