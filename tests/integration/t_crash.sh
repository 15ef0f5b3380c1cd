#!/usr/bin/env bash
#
# t_crash: crash consistency of the volume engine (tests/crash/README.md).
# crashsim records every LUN write and flush of a seeded metadata-heavy
# workload, then builds crash states from the recording (prefixes of the
# log, reordered subsets of a flush epoch, torn writes) and checks each:
# vol_open replays the journal, fsck -n is clean, every fsync'ed file that
# was not touched afterwards is intact, and no file holds bytes it never
# had.  Any failing state fails the script.  `make crashtest` runs the
# full enumeration (every prefix, >= 10,000 states).  t_crash2.sh runs it
# with two hosts (crashsim --hosts 2: host A crashes, host B recovers it
# and works on; tests/crash/README.md §5).
#
#   t_crash.sh [SEED]          default seed 1
#   VMFS_BUILD                 directory holding crashsim (default <repo>/build)
#   VMFS_CRASH_STATES=N        states to check (default 1000)
#   VMFS_CRASH_HOSTS=N         1 (default) or 2
#   VMFS_CRASH_OPS=N           workload ops (default: crashsim's)
#
# A failing state prints the line that reruns it alone; with VMFS_KEEP=1
# the scratch directory keeps the recording (work/, for crashsim
# --from-recording) and the crash images of the first failures
# (state-I.img, for 'vmfs fsck -n').
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

SEED=${1:-1}
STATES=${VMFS_CRASH_STATES:-1000}
HOSTS=${VMFS_CRASH_HOSTS:-1}
OPS=()
[[ -n ${VMFS_CRASH_OPS:-} ]] && OPS=(--ops "$VMFS_CRASH_OPS")
MIN_STATES=1000
CRASHSIM=$VMFS_BUILD/crashsim
OUT=$T_DIR/crashsim.out

[[ -x $CRASHSIM ]] ||
	fail "no $CRASHSIM: build it with 'make $VMFS_BUILD/crashsim' or set VMFS_BUILD"

step "record the workload and check $STATES crash states (seed $SEED, $HOSTS host(s))"
rc=0
"$CRASHSIM" --dir "$T_DIR/work" --seed "$SEED" --max-states "$STATES" \
	--hosts "$HOSTS" "${OPS[@]}" \
	--save-recording --save-failed "$T_DIR" >"$OUT" 2>&1 </dev/null || rc=$?
cat "$OUT"

step "summary"
summary=$(grep -E '^crash states: checked [0-9]+, failed [0-9]+$' "$OUT" || true)
[[ -n $summary ]] || fail "crashsim printed no summary (exit status $rc)"
read -r _ _ _ checked _ failed <<<"${summary//,/}"
if ((failed > 0 || rc != 0)); then
	# The log ends with the first failure, for tests/run.sh's tail.
	echo "--- first failing state:"
	sed -n '/^FAIL state/,/rerun:/p' "$OUT" | sed -n '1,/rerun:/p'
	fail "$summary (exit status $rc, seed $SEED); rerun a state with the line above, keep images with VMFS_KEEP=1"
fi
((checked >= MIN_STATES || STATES < MIN_STATES)) ||
	fail "only $checked states checked, expected at least $MIN_STATES"
t_log "$summary"
