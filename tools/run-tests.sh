#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, then
#   1. a gcc build with -Werror: every test (unit, fuzz corpus replay, end-to-end in netns);
#   2. an ASan+UBSan build: every test again, so memory errors anywhere fail the run;
#   3. a clang build of the libFuzzer targets, each run for a short bounded time;
#   4. the Debian packages: built, installed, a tunnel from the installed daemon, purged
#      (tests/package, once: in the gcc build only);
#   5. an arm64 cross build and its unit tests under qemu-user (tools/cross-arm64.sh).
# Prints meson's summary for each build and a final "N passed, N failed" line. Run as root
# (the end-to-end tests need network namespaces; without root they are skipped).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" -eq 0 ]; then
        ./tools/setup-debian.sh || exit 1
fi

fuzz_seconds=${FUZZ_SECONDS:-20}
failed_steps=()

configure() { # dir options...: quiet unless it fails, then the whole output
        local dir=$1 log rc=0; shift
        log=$(mktemp)
        if [ -f "$dir/build.ninja" ]; then
                meson configure "$dir" "$@" >"$log" 2>&1 || rc=$?
        else
                meson setup "$dir" "$@" >"$log" 2>&1 || rc=$?
        fi
        [ "$rc" -eq 0 ] || { echo "meson setup $dir failed:"; cat "$log"; }
        rm -f "$log"
        return "$rc"
}

step() { # name command...
        local name=$1; shift
        echo "=== $name"
        if ! "$@"; then
                failed_steps+=("$name")
        fi
}

configure build-ci -Dwerror=true --buildtype=debugoptimized || exit 1
step "gcc -Werror build" ninja -C build-ci
step "tests (gcc)" meson test -C build-ci --print-errorlogs --num-processes 2 --no-suite package

CC=gcc configure build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
        --buildtype=debug || exit 1
step "ASan+UBSan build" ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        step "tests (ASan+UBSan)" meson test -C build-asan --print-errorlogs --num-processes 2 \
        --no-suite package

if [ ! -f build-fuzz/build.ninja ]; then
        CC=clang configure build-fuzz -Dfuzz=true -Dnetns_tests=false -Dnm_plugin=disabled -Dwerror=true \
                -Db_sanitize=address,undefined -Db_lundef=false || exit 1
fi
step "clang libFuzzer build" ninja -C build-fuzz
fuzz_ok=0 fuzz_failed=0
for name in fuzz-messages fuzz-config fuzz-handshake fuzz-stun fuzz-relay fuzz-offload fuzz-http fuzz-discovery; do
        f=build-fuzz/tests/fuzz/$name
        if [ ! -f "$f" ] || [ ! -x "$f" ]; then
                echo "=== $name: not built"
                fuzz_failed=$((fuzz_failed + 1))
                failed_steps+=("$name (not built)")
                continue
        fi
        corpus=$(mktemp -d)
        cp tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
        echo "=== $name for ${fuzz_seconds}s"
        if "$f" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=0 \
                "$corpus" >"build-fuzz/$name.log" 2>&1; then
                fuzz_ok=$((fuzz_ok + 1))
                tail -n 1 "build-fuzz/$name.log"
        else
                fuzz_failed=$((fuzz_failed + 1))
                tail -n 40 "build-fuzz/$name.log"
                failed_steps+=("$name")
        fi
        rm -rf "$corpus"
done

# The packages install into the system and the instrumented build changes nothing in them: they
# run once, from the gcc build, with a log of their own (testlog-package.json).
rm -f build-ci/meson-logs/testlog-package.json build-arm64/meson-logs/testlog.json
step "Debian packages (tests/package)" meson test -C build-ci --print-errorlogs --suite package \
        --logbase testlog-package

# arm64: the unit suite under qemu-aarch64-static (build-arm64/meson-logs/testlog.json).
step "arm64 cross build and unit tests (qemu)" ./tools/cross-arm64.sh

# One closing line over everything that ran.
python3 - "$fuzz_ok" "$fuzz_failed" <<'PY'
import json, sys
ok, failed, skipped = int(sys.argv[1]), int(sys.argv[2]), 0
names = []
for log in ("build-ci/meson-logs/testlog.json", "build-asan/meson-logs/testlog.json",
            "build-ci/meson-logs/testlog-package.json", "build-arm64/meson-logs/testlog.json"):
    try:
        lines = open(log).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            t = json.loads(line)
            out = (t.get("stdout") or "").rstrip("\n") + "\n" + (t.get("stderr") or "")
            names.append((f"{log.split('/')[0]}: {t['name']} ({r})", out))
# The failures again, right above the closing line: each one's failed checks and sanitizer
# reports (first lines), then the end of its output.
for name, out in names:
    lines = out.rstrip().splitlines()
    key = [l for l in lines if l.startswith(("FAIL", "       got", "       want")) or
           "ERROR: " in l or "SUMMARY: " in l or "runtime error" in l][:12]
    print(f"--- failed test {name}:")
    print("\n".join(key + ["  ..."] + lines[-6:]))
print(f"{ok} passed, {failed} failed, {skipped} skipped")
PY

if [ ${#failed_steps[@]} -gt 0 ]; then
        echo "failed: ${failed_steps[*]}"
        exit 1
fi
