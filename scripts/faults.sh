#!/usr/bin/env bash
# The fault suite: a results folder must survive concurrent writers, kill -9 of the sweep or
# of a worker at random moments, a full disk and a read-only folder, each time ending in a
# folder that `report` reads and that `sweep --resume` completes with every planned run
# exactly once. Prints what it does and PASS/FAIL per case; exits 1 if a case failed.
#
#   bash scripts/faults.sh [KILLS]        (KILLS: kill -9 rounds, default 20)
#
# The full-disk and read-only cases mount a small tmpfs, which needs root (or sudo); without
# it they use chmod (read-only) or are skipped (full disk). LLAMAPERF names the binary
# (default: built now, target/debug/llamaperf); the model cache is target/faults-cache.
set -uo pipefail
cd "$(dirname "$0")/.."
kills="${1:-20}"
if [ -z "${LLAMAPERF:-}" ]; then
    cargo build --quiet --bin llamaperf || exit 1
    LLAMAPERF="${CARGO_TARGET_DIR:-target}/debug/llamaperf"
fi
export LLAMAPERF_CACHE="${LLAMAPERF_CACHE:-$PWD/${CARGO_TARGET_DIR:-target}/faults-cache}"
work="$(mktemp -d)"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
mounted=()
cleanup() {
    for m in "${mounted[@]}"; do $sudo umount "$m" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# Six runs of about a second each, on the synthetic tiny model.
runs=6
cat >"$work/s.toml" <<'EOF'
name = "faults"
[defaults]
model = "tiny"
prompt_tokens = 32
gen_tokens = 64
repetitions = 4
[matrix]
batch = [1, 2, 3, 4, 5, 6]
EOF

results=()
say() { echo "faults: $*"; }
pass() { results+=("PASS  $1"); say "PASS $1"; }
fail() { results+=("FAIL  $1: $2"); say "FAIL $1: $2"; }

# Checks that report reads folder $1 without a warning of doubled runs (reason on stdout).
report_reads() {
    local err
    err="$("$LLAMAPERF" report "$1" --out "$work/report" 2>&1 >/dev/null)" || {
        echo "report failed: $err"
        return 1
    }
    if grep -q "is recorded .* times" <<<"$err"; then
        echo "report found doubled runs: $err"
        return 1
    fi
}

# Resumes folder $1 until the sweep ends (exit 0, or 1 when runs failed) and checks that
# every planned run is recorded exactly once.
complete_once() {
    local rc lines
    "$LLAMAPERF" sweep --resume "$1" >/dev/null 2>"$work/resume.err"
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        echo "resume exited $rc: $(tail -2 "$work/resume.err")"
        return 1
    fi
    report_reads "$1" || return 1
    lines="$(wc -l <"$1/runs.jsonl")"
    if [ "$lines" -ne "$runs" ]; then
        echo "runs.jsonl has $lines lines for $runs runs"
        return 1
    fi
}

# Waits until file $1 exists (at most 120 s).
wait_for() {
    for _ in $(seq 1200); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

say "preparing the cache (synthetic model, calibration) in $LLAMAPERF_CACHE"
"$LLAMAPERF" sweep "$work/s.toml" --out "$work/warmup" >/dev/null 2>&1

case_concurrent() {
    local d="$work/concurrent" first second third why
    say "concurrent writers: a sweep, a resume and a second sweep of one folder at once"
    "$LLAMAPERF" sweep "$work/s.toml" --out "$d" >/dev/null 2>"$work/first.err" &
    first=$!
    wait_for "$d/plan.json" || { fail concurrent "no folder appeared"; return; }
    "$LLAMAPERF" sweep --resume "$d" >/dev/null 2>"$work/second.err"
    second=$?
    "$LLAMAPERF" sweep "$work/s.toml" --out "$d" >/dev/null 2>"$work/third.err"
    third=$?
    wait "$first"
    if [ "$second" -ne 2 ] || ! grep -q "being written by pid $first" "$work/second.err"; then
        fail concurrent "the resume exited $second: $(cat "$work/second.err")"
    elif [ "$third" -ne 2 ]; then
        fail concurrent "the second sweep exited $third"
    elif why="$(complete_once "$d")"; then
        pass "concurrent writers (second writer refused with the holder's pid)"
    else
        fail concurrent "$why"
    fi
}

# The worker processes among the children of pid $1.
workers() {
    local pid
    for pid in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q " worker" && echo "$pid"
    done
}

case_kills() {
    local d="$work/killed" i pid victim why who
    say "kill -9 at random moments, $kills times (the sweep or one of its workers)"
    for i in $(seq "$kills"); do
        if [ -d "$d" ]; then
            "$LLAMAPERF" sweep --resume "$d" >/dev/null 2>&1 &
        else
            "$LLAMAPERF" sweep "$work/s.toml" --out "$d" >/dev/null 2>&1 &
        fi
        pid=$!
        sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.1 + rand() * 2.5 }')"
        victim="$pid"
        who="sweep"
        if [ $((i % 2)) -eq 0 ]; then
            victim="$(workers "$pid" | head -1)"
            who="worker"
            [ -n "$victim" ] || { victim="$pid"; who="sweep"; }
        fi
        kill -9 "$victim" 2>/dev/null
        if [ "$who" = worker ]; then
            # the sweep records the worker's death, or is killed while it does
            sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", rand() * 0.3 }')"
            kill -9 "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
        if [ -f "$d/plan.json" ] && ! why="$(report_reads "$d")"; then
            fail "kill -9 round $i ($who)" "$why"
            return
        fi
        say "  round $i: killed the $who; $({ wc -l <"$d/runs.jsonl"; } 2>/dev/null || echo 0) lines in runs.jsonl"
    done
    [ -d "$d" ] || "$LLAMAPERF" sweep "$work/s.toml" --out "$d" >/dev/null 2>&1
    if why="$(complete_once "$d")"; then
        pass "kill -9 x $kills (sweep and workers)"
    else
        fail "kill -9" "$why"
    fi
}

# Mounts a tmpfs of $2 bytes at $1 (root or sudo).
mount_tmpfs() {
    mkdir -p "$1"
    $sudo mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || return 1
    mounted+=("$1")
}

case_full_disk() {
    local disk="$work/disk" d rc why
    say "full disk: a sweep into a 256 KiB tmpfs, then resumed with room"
    mount_tmpfs "$disk" 262144 || { results+=("SKIP  full disk: mounting a tmpfs needs root or sudo"); return; }
    d="$disk/out"
    "$LLAMAPERF" sweep "$work/s.toml" --out "$d" >/dev/null 2>"$work/full.err"
    rc=$?
    if [ "$rc" -ne 1 ] || ! grep -q "continue with: llamaperf sweep --resume $d" "$work/full.err"; then
        fail "full disk" "the sweep exited $rc without the resume hint: $(tail -2 "$work/full.err")"
    elif [ -s "$d/tokens.csv" ] && [ "$(tail -c1 "$d/tokens.csv" | od -An -c | tr -d ' ')" != '\n' ]; then
        fail "full disk" "tokens.csv ends in a partial row"
    elif ! why="$(report_reads "$d")"; then
        fail "full disk" "$why"
    else
        $sudo mount -o remount,size=64m "$disk"
        if why="$(complete_once "$d")"; then
            pass "full disk (exit 1 with the resume hint, whole lines, resumed)"
        else
            fail "full disk" "$why"
        fi
    fi
}

case_read_only() {
    local ro="$work/ro" d rc why
    say "read-only folder: a resume of a folder it cannot write"
    if mount_tmpfs "$ro" 67108864; then
        d="$ro/out"
    else
        d="$work/ro-out"
    fi
    "$LLAMAPERF" sweep "$work/s.toml" --out "$d" >/dev/null 2>&1 &
    local pid=$!
    wait_for "$d/runs.jsonl"
    kill -INT "$pid"
    wait "$pid"
    if [ "$d" = "$ro/out" ]; then
        $sudo mount -o remount,ro "$ro"
    else
        chmod -R a-w "$d"
    fi
    local before
    before="$(md5sum "$d"/* | md5sum)"
    "$LLAMAPERF" sweep --resume "$d" >/dev/null 2>"$work/ro.err"
    rc=$?
    if [ "$rc" -ne 1 ]; then
        fail "read-only" "the resume exited $rc: $(tail -2 "$work/ro.err")"
    elif [ "$before" != "$(md5sum "$d"/* | md5sum)" ]; then
        fail "read-only" "the folder changed"
    elif ! why="$(report_reads "$d")"; then
        fail "read-only" "$why"
    else
        if [ "$d" = "$ro/out" ]; then
            $sudo mount -o remount,rw "$ro"
        else
            chmod -R u+w "$d"
        fi
        if why="$(complete_once "$d")"; then
            pass "read-only folder (refused with exit 1, unchanged, resumed when writable)"
        else
            fail "read-only" "$why"
        fi
    fi
}

case_concurrent
case_kills
case_full_disk
case_read_only
echo
printf '%s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q '^FAIL'
