#!/bin/bash
# SPDX-License-Identifier: MIT
#
# A fuzzing campaign: every libFuzzer target of the clang fuzzing build, one after the other,
# each for SECONDS, on a corpus that persists between campaigns. CI only replays the seed corpus
# (the "fuzz" suite); this looks for new inputs.
#
#   tools/fuzz-campaign.sh [SECONDS [CORPUS_DIR]]
#
#   SECONDS      per target (default 600)
#   CORPUS_DIR   the persistent corpus, one directory per target (default
#                /var/tmp/shadowmesh-fuzz); each is seeded from tests/fuzz/corpus/TARGET without
#                overwriting what earlier campaigns found. A crashing input is saved as
#                CORPUS_DIR/artifacts/TARGET/crash-* (or leak-, timeout-, oom-).
#
# The targets come from the build itself (meson introspect: every executable named fuzz-*), so a
# new fuzzer joins the campaign when tests/fuzz/meson.build builds it. build-fuzz is configured as
# tools/run-tests.sh configures it (clang, -Dfuzz=true, ASan and UBSan) when it does not exist.
# Environment: BUILD_DIR (default build-fuzz), FUZZ_TIMEOUT (seconds for one input before
# libFuzzer calls it a hang, default 25), FUZZ_RSS_MB (default 2048).
#
# Prints one line per target (executions, corpus size, crashes) and a final line; exits 1 when any
# target crashed or could not run, 2 on a usage or build error.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
SECONDS_PER_TARGET=${1:-600}
CORPUS_ROOT=${2:-/var/tmp/shadowmesh-fuzz}
BUILD_DIR=${BUILD_DIR:-build-fuzz}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-25}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}

usage() {
        sed -n '4,23p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}
[[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a positive integer: '$SECONDS_PER_TARGET'" >&2; usage; }
(($# <= 2)) || usage

# The logs of the build and of each target go next to the corpus.
mkdir -p "$CORPUS_ROOT"
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        echo "configuring $BUILD_DIR (clang, libFuzzer, ASan+UBSan)"
        CC=clang meson setup "$BUILD_DIR" -Dfuzz=true -Dnetns_tests=false -Dnm_plugin=disabled \
                -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
                >"$CORPUS_ROOT/setup.log" 2>&1 ||
                { cat "$CORPUS_ROOT/setup.log" >&2; echo "configuring $BUILD_DIR failed" >&2; exit 2; }
fi
if [[ $(meson introspect "$BUILD_DIR" --buildoptions |
        python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "fuzz"][0])') != True ]]; then
        echo "$BUILD_DIR is not a fuzzing build (-Dfuzz=true)" >&2
        exit 2
fi
ninja -C "$BUILD_DIR" >"$CORPUS_ROOT/ninja.log" 2>&1 ||
        { tail -n 40 "$CORPUS_ROOT/ninja.log" >&2; echo "building $BUILD_DIR failed" >&2; exit 2; }

# name<TAB>path of every fuzz-* executable the build defines.
mapfile -t TARGETS < <(meson introspect "$BUILD_DIR" --targets | python3 -c '
import json, sys
for t in sorted(json.load(sys.stdin), key=lambda t: t["name"]):
    if t["type"] == "executable" and t["name"].startswith("fuzz-"):
        print(t["name"] + "\t" + t["filename"][0])
')
((${#TARGETS[@]} > 0)) || { echo "$BUILD_DIR defines no fuzz-* executable" >&2; exit 2; }

echo "fuzz campaign: ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET} s each, corpus $CORPUS_ROOT"
total_execs=0 total_crashes=0 failed=()
for entry in "${TARGETS[@]}"; do
        name=${entry%%$'\t'*}
        exe=${entry#*$'\t'}
        corpus=$CORPUS_ROOT/$name
        artifacts=$CORPUS_ROOT/artifacts/$name
        log=$CORPUS_ROOT/$name.log
        mkdir -p "$corpus" "$artifacts"
        if [[ -d tests/fuzz/corpus/$name ]]; then
                cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
        fi
        before=$(find "$artifacts" -type f | wc -l)
        rc=0
        "$exe" -max_total_time="$SECONDS_PER_TARGET" -timeout="$FUZZ_TIMEOUT" \
                -rss_limit_mb="$FUZZ_RSS_MB" -print_final_stats=1 \
                -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        crashes=$(($(find "$artifacts" -type f | wc -l) - before))
        files=$(find "$corpus" -type f | wc -l)
        if ((rc != 0 && crashes == 0)); then
                # libFuzzer stopped without saving an input: count it, it is a failure all the same.
                crashes=1
        fi
        printf '%-16s %12s executions  corpus %6d files  %d crashes%s\n' "$name" "${execs:-?}" \
                "$files" "$crashes" "$( ((rc == 0)) || echo "  (exit status $rc, log $log)")"
        total_execs=$((total_execs + ${execs:-0}))
        total_crashes=$((total_crashes + crashes))
        if ((crashes > 0)); then
                failed+=("$name")
                grep -E '^==[0-9]+==ERROR|^SUMMARY|Test unit written to' "$log" | sed 's/^/    /' || true
        fi
done

echo "fuzz campaign: ${#TARGETS[@]} targets x ${SECONDS_PER_TARGET} s: $total_execs executions," \
        "$total_crashes crashes${failed[*]:+ (${failed[*]})}"
((total_crashes == 0))
