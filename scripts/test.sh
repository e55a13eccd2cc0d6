#!/usr/bin/env bash
# Every test of ncc, as `make test` runs it (after scripts/deps.sh):
#   1. the C format check (make check-format);
#   2. a build with AddressSanitizer + UBSan into build/asan;
#   3. the local PostgreSQL, with an empty database ncc_test for this run;
#   4. the unit and static tests (Criterion), and the shell tests tests/scripts/test_*.sh (TAP);
#   5. the whole system started from build/asan with secrets made for this run, then the
#      integration and security tests against it; the daemons' logs must hold no
#      sanitizer report;
#   6. the browser tests in tests/e2e (node's test runner, headless Chromium), if any;
#   7. one closing line "N passed, N failed"; exit status 0 only when nothing failed.
# A failing step or binary does not stop the run: one run shows every failure.
# Settings: NCC_TEST_JOBS (Criterion jobs per binary, default 1), NCC_TEST_TIMEOUT (seconds
# per test binary, default 300), NCC_VAR (default <repo>/var), BUILD (default build/asan).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
var=${NCC_VAR:-$top/var}
build=${BUILD:-build/asan}
jobs=${NCC_TEST_JOBS:-1}
binary_timeout=${NCC_TEST_TIMEOUT:-300}
export NCC_VAR=$var

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export NCC_SOURCE_DIR=$top
export NCC_TEST_BIN_DIR=$top/$build/bin

passed=0
failed=0
failures=()
build_failed=0
system_started=0
sanitizer_report='ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: UndefinedBehaviorSanitizer|[.](c|h):[0-9]+:[0-9]+: runtime error:'

run_started=$(date +%s%N)
timings=()

# Milliseconds since the run started.
elapsed_ms() {
    echo $((($(date +%s%N) - run_started) / 1000000))
}

# step TITLE: a heading with the time since the run started, so a slow phase shows.
step() {
    printf '\n=== %s  (at %d s)\n' "$*" $(($(elapsed_ms) / 1000))
}

# timed LABEL START_MS: notes how long LABEL took, for the closing list of the slowest.
timed() {
    timings+=("$(($(elapsed_ms) - $2)) $1")
}

# fail LABEL [COUNT]: a failure that is not one of Criterion's counted tests.
fail() {
    failures+=("$1")
    failed=$((failed + ${2:-1}))
}

cleanup() {
    if [ $system_started = 1 ]; then
        scripts/run.sh stop >/dev/null 2>&1 || true
    fi
    scripts/pg.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT TERM

# The test binaries of an area, from their sources (a stale binary whose source is gone
# is not run).
binaries() {
    local src
    for src in tests/"$1"/test_*.c; do
        [ -e "$src" ] || continue
        src=${src##*/}
        printf '%s\n' "$build/tests/$1/${src%.c}"
    done
}

# Runs one Criterion binary; adds its counts; records it when anything went wrong.
run_criterion() {
    local bin=$1 out rc synthesis tested passing failing crashing
    printf -- '--- %s\n' "$bin"
    local started
    started=$(elapsed_ms)
    if [ ! -x "$bin" ]; then
        fail "$bin (not built)"
        return
    fi
    if [ $build_failed = 1 ] &&
        ! make -q BUILD="$build" SANITIZE=address,undefined "$bin" >/dev/null 2>&1; then
        fail "$bin (not rebuilt: the build failed)"
        return
    fi
    out=$(mktemp)
    timeout -k 10 "$binary_timeout" "$bin" --jobs "$jobs" --color=never 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    synthesis=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -a 'Synthesis: Tested:' | tail -n 1)
    if [[ $synthesis =~ Tested:\ *([0-9]+).*Passing:\ *([0-9]+).*Failing:\ *([0-9]+).*Crashing:\ *([0-9]+) ]]; then
        tested=${BASH_REMATCH[1]}
        passing=${BASH_REMATCH[2]}
        failing=${BASH_REMATCH[3]}
        crashing=${BASH_REMATCH[4]}
        passed=$((passed + passing))
        failed=$((failed + failing + crashing))
        if [ $((failing + crashing)) -gt 0 ]; then
            failures+=("$bin ($failing failing, $crashing crashing of $tested)")
        elif [ "$rc" != 0 ]; then
            fail "$bin (exit status $rc)"
        elif grep -Eaq "$sanitizer_report" "$out"; then
            fail "$bin (sanitizer report)"
        fi
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        fail "$bin (timed out after ${binary_timeout}s)"
    else
        fail "$bin (no result, exit status $rc)"
    fi
    rm -f "$out"
    timed "$bin" "$started"
}

# Fresh secrets for this run, exported so the daemons and the tests share them.
make_secrets() {
    export NCC_PBX_WEBHOOK_SECRET NCC_SMS_RECEIPT_SECRET NCC_DATA_KEYS NCC_BUS_ACTOR_KEY
    export NCC_BLIND_INDEX_KEY NCC_ARGON2_MEMORY_KIB
    export NCC_BOOTSTRAP_ADMIN_LOGIN NCC_BOOTSTRAP_ADMIN_PASSWORD NCC_BOOTSTRAP_ADMIN_TOTP_SECRET
    NCC_PBX_WEBHOOK_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    NCC_SMS_RECEIPT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    NCC_DATA_KEYS=test1:$(head -c 32 /dev/urandom | base64 -w0)
    NCC_BUS_ACTOR_KEY=$(head -c 32 /dev/urandom | base64 -w0)
    NCC_BLIND_INDEX_KEY=$(head -c 32 /dev/urandom | base64 -w0)
    # Argon2id at 64 MiB per login is slow under ASan; tests use 4 MiB.
    NCC_ARGON2_MEMORY_KIB=${NCC_ARGON2_MEMORY_KIB:-4096}
    NCC_BOOTSTRAP_ADMIN_LOGIN='admin'
    NCC_BOOTSTRAP_ADMIN_PASSWORD=Test-$(head -c 18 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
    NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=$(head -c 20 /dev/urandom | base32 -w0 | tr -d '=')
}

# Runs one shell test (tests/scripts/test_*.sh: TAP "ok N" / "not ok N" lines); adds its counts.
run_tap() {
    local t=$1 out rc pass fail_count started
    printf -- '--- %s\n' "$t"
    started=$(elapsed_ms)
    out=$(mktemp)
    BUILD=$build timeout -k 10 "$binary_timeout" "$t" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    pass=$(grep -ac '^ok ' "$out")
    fail_count=$(grep -ac '^not ok ' "$out")
    rm -f "$out"
    passed=$((passed + pass))
    failed=$((failed + fail_count))
    if [ "$fail_count" -gt 0 ]; then
        failures+=("$t ($fail_count failing of $((pass + fail_count)))")
    elif [ "$rc" != 0 ]; then
        fail "$t (exit status $rc)"
    elif [ "$pass" = 0 ]; then
        fail "$t (no result)"
    fi
    timed "$t" "$started"
}

# node --test in tests/e2e against the running system; adds its counts.
run_e2e() {
    local out rc pass fail_count cancelled
    (
        cd tests/e2e || exit 1
        if [ -f package-lock.json ]; then
            npm ci --no-audit --no-fund
        elif [ -f package.json ]; then
            npm install --no-audit --no-fund
        fi
    ) || {
        fail "tests/e2e (npm install)"
        return
    }
    export NCC_TEST_CHROMIUM=${NCC_TEST_CHROMIUM:-$(command -v chromium || true)}
    export PUPPETEER_EXECUTABLE_PATH=${PUPPETEER_EXECUTABLE_PATH:-$NCC_TEST_CHROMIUM}
    export CHROME_PATH=${CHROME_PATH:-$NCC_TEST_CHROMIUM}
    export NODE_EXTRA_CA_CERTS=$NCC_TEST_CA_FILE
    out=$(mktemp)
    local started
    started=$(elapsed_ms)
    (cd tests/e2e && timeout -k 10 900 node --test --test-reporter=tap ./*.test.mjs) 2>&1 |
        tee "$out"
    rc=${PIPESTATUS[0]}
    pass=$(grep -aE '^# pass [0-9]+' "$out" | tail -n 1 | awk '{print $3}')
    fail_count=$(grep -aE '^# fail [0-9]+' "$out" | tail -n 1 | awk '{print $3}')
    cancelled=$(grep -aE '^# cancelled [0-9]+' "$out" | tail -n 1 | awk '{print $3}')
    rm -f "$out"
    timed "tests/e2e (all browser tests)" "$started"
    if [ -z "$pass" ]; then
        fail "tests/e2e (no result, exit status $rc)"
        return
    fi
    passed=$((passed + pass))
    failed=$((failed + ${fail_count:-0} + ${cancelled:-0}))
    if [ $((${fail_count:-0} + ${cancelled:-0})) -gt 0 ]; then
        failures+=("tests/e2e (${fail_count:-0} failing, ${cancelled:-0} cancelled)")
    elif [ "$rc" != 0 ]; then
        fail "tests/e2e (exit status $rc)"
    fi
}

# --- 1. format ------------------------------------------------------------------------
step "format (make check-format)"
make -s check-format || fail "format: run make format"

# --- 2. build -------------------------------------------------------------------------
step "build ($build, SANITIZE=address,undefined)"
if ! make -k -j2 BUILD="$build" SANITIZE=address,undefined all tests; then
    build_failed=1
    fail "build (make BUILD=$build SANITIZE=address,undefined all tests)"
fi

# --- 3. PostgreSQL --------------------------------------------------------------------
step "PostgreSQL"
db_ok=0
if scripts/pg.sh start && url=$(scripts/pg.sh fresh ncc_test); then
    export NCC_DATABASE_URL=$url
    NCC_DATABASE_OWNER_URL=$(scripts/pg.sh owner-url ncc_test)
    export NCC_DATABASE_OWNER_URL
    db_ok=1
    echo "database ncc_test (empty) on the local cluster"
else
    fail "PostgreSQL (scripts/pg.sh start)"
fi

# --- 4. unit and static tests ---------------------------------------------------------
step "unit and static tests"
for area in unit static; do
    while IFS= read -r bin; do
        run_criterion "$bin"
    done < <(binaries "$area")
done
# Shell tests (backups: tests/scripts/test_backup.sh); each starts what it needs on its own
# ports and database.
if [ $db_ok = 1 ]; then
    for t in tests/scripts/test_*.sh; do
        [ -e "$t" ] && run_tap "$t"
    done
fi

# --- 5. the whole system: integration and security tests -------------------------------
step "integration and security tests against the running system"
if [ $db_ok = 1 ]; then
    make_secrets
    export NCC_READY_TIMEOUT=${NCC_READY_TIMEOUT:-60}
    export NCC_TEST_GATEWAY_URL=https://127.0.0.1:${NCC_HTTPS_PORT:-8443}
    system_started=1
    mkdir -p "$var/log"
    marker=$(mktemp "$var/log/.started.XXXXXX")
    if BUILD=$build scripts/run.sh background; then
        export NCC_TEST_CA_FILE=${NCC_TLS_CERT:-$var/tls/gateway.pem}
        [ -f "$var/tls/gateway.crt" ] && NCC_TEST_CA_FILE=$var/tls/gateway.crt
        for area in integration security; do
            while IFS= read -r bin; do
                run_criterion "$bin"
            done < <(binaries "$area")
        done

        # --- 6. browser tests -------------------------------------------------------------
        if compgen -G 'tests/e2e/*.test.mjs' >/dev/null; then
            step "browser tests (tests/e2e)"
            run_e2e
        fi
    else
        fail "system start (scripts/run.sh background): integration, security and browser tests not run"
    fi
    step "stopping the system"
    scripts/run.sh stop
    system_started=0
    # The logs written by this run (a start that failed early leaves older ones alone).
    while IFS= read -r log; do
        if grep -Eaq "$sanitizer_report" "$log"; then
            echo "sanitizer report in $log:"
            grep -Ea -A 12 "$sanitizer_report" "$log" | head -n 40 | sed 's/^/    /'
            fail "$log (sanitizer report)"
        fi
    done < <(find "$var/log" -maxdepth 1 -name '*.log' -newer "$marker" | sort)
    rm -f "$marker"
else
    fail "integration, security and browser tests not run (no database)"
fi

# --- 7. summary -----------------------------------------------------------------------
scripts/pg.sh stop >/dev/null 2>&1 || true
echo
if [ ${#timings[@]} -gt 0 ]; then
    echo "Slowest (seconds), of $(($(elapsed_ms) / 1000)) s in all:"
    printf '%s\n' "${timings[@]}" | sort -rn | head -n 10 |
        awk '{ ms = $1; $1 = ""; printf "  %6.1f %s\n", ms / 1000, $0 }'
fi
if [ ${#failures[@]} -gt 0 ]; then
    echo "Failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed = 0 ] && [ ${#failures[@]} = 0 ]
