#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after the other, and reports the executions
# of each. Exits non-zero if any target finds a crash, a timeout or an out-of-memory input
# (the input is saved under fuzz/artifacts/<target>/).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment: FUZZ_SECONDS (default 60, overridden by the first argument), FUZZ_SANITIZER
# (default none; `address` for ASan), FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    seconds="$1"
    shift
fi
all=(frame handshake wire_messages ot_messages gc_messages gmw_messages fhe_messages bristol model_json server_session)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
sanitizer="${FUZZ_SANITIZER:-none}"

# cargo-fuzz needs nightly features; on a stable toolchain set RUSTC_BOOTSTRAP=1.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

max_len() {
    case "$1" in
        frame) echo 65536 ;;
        wire_messages) echo 4096 ;;
        bristol) echo 16384 ;;
        model_json) echo 131072 ;;
        *) echo 262144 ;;
    esac
}

# Seeds that live elsewhere in the repository.
static_seeds() {
    case "$1" in
        model_json) cp ../models/*.json "corpus/$1/" ;;
        bristol) cp ../circuits/{adder64,neg64,sub64,zero_equal}.txt "corpus/$1/" ;;
    esac
}

cargo fuzz build -s "$sanitizer" || exit 2
mkdir -p logs
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    static_seeds "$t"
    # The protocol targets record honest sessions as seeds when VEIL_FUZZ_SEEDS is set.
    VEIL_FUZZ_SEEDS="corpus/$t" cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
        -runs=0 >"logs/$t.seed.log" 2>&1
    log="logs/$t.log"
    # shellcheck disable=SC2086
    cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=20 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    summary+=("$(printf '%-16s %12s executions  %5ss  exit %s' "$t" "${execs:-?}" "$seconds" "$rc")")
    if [[ $rc -ne 0 ]]; then
        failed+=("$t")
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5
    fi
done
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "findings in: ${failed[*]} (inputs under fuzz/artifacts/, logs under fuzz/logs/)"
    exit 1
fi
echo "no findings"
