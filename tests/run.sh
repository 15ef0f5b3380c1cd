#!/usr/bin/env bash
#
# tests/run.sh [UNIT_BINARY] [SCRIPT...]: the whole test suite.
#
# Runs the CUnit binary (each of its tests counts once, from CUnit's run
# summary), then every tests/integration/t_*.sh in order (each script
# counts once; exit 77 means skipped), or only the scripts named.  Each
# script's output goes to a log that is shown when it fails.  Ends with
# the line "N passed, N failed" and exits non-zero if anything failed.
#
#   VMFS_BIN              binaries for the integration scripts (default bin/)
#   VMFS_TEST_TIMEOUT     seconds one script may take (default 1200)
#   VMFS_TEST_LOG_DIR     keep the logs here (default: a temp dir, removed)

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
unit=${1:-}
[[ $# -gt 0 ]] && shift
timeout_s=${VMFS_TEST_TIMEOUT:-1200}
passed=0
failed=0
skipped=0
failures=()

if [[ -n ${VMFS_TEST_LOG_DIR:-} ]]; then
	logdir=$VMFS_TEST_LOG_DIR
	mkdir -p "$logdir"
else
	logdir=$(mktemp -d /tmp/vmfs-tests.XXXXXX)
	# Logs of a failed run are kept for the post-mortem.
	trap '((failed)) || rm -rf "$logdir"' EXIT
fi

# CUnit's summary has a line "tests  Total  Ran  Passed  Failed  Inactive".
run_unit() {
	local log=$logdir/unit.log rc=0 line ran p f
	echo "=== unit: $unit"
	"$unit" 2>&1 | tee "$log" || rc=$?
	line=$(grep -E '^[[:space:]]+tests[[:space:]]+[0-9]+' "$log" | tail -n 1)
	if [[ -z $line ]]; then
		echo "FAIL unit: no CUnit summary (exit status $rc)"
		failed=$((failed + 1))
		failures+=("unit binary $unit (crashed?)")
		return
	fi
	read -r _ _ ran p f _ <<<"$line"
	passed=$((passed + p))
	failed=$((failed + f))
	((f == 0)) || failures+=("$f unit test(s): rerun one with '$unit SUITE TEST'")
	# A suite whose init failed, or a crash after the summary.
	if ((rc != 0 && f == 0)); then
		failed=$((failed + 1))
		failures+=("unit binary exited $rc with no failed test (suite init/cleanup?)")
	fi
	echo "unit: $ran ran, $p passed, $f failed"
}

run_script() {
	local s=$1 name log rc=0 t0
	name=$(basename "$s" .sh)
	log=$logdir/$name.log
	t0=$SECONDS
	timeout --signal=TERM --kill-after=30 "$timeout_s" "$s" >"$log" 2>&1 || rc=$?
	case $rc in
	0)
		echo "PASS $name ($((SECONDS - t0)) s)"
		passed=$((passed + 1))
		;;
	77)
		echo "SKIP $name: $(tail -n 1 "$log")"
		skipped=$((skipped + 1))
		;;
	*)
		[[ $rc == 124 ]] && echo "TIMEOUT $name after $timeout_s s"
		echo "FAIL $name (exit $rc, $((SECONDS - t0)) s)"
		# The test's own verdict first: the log dumps after it would
		# push it out of the tail below.
		grep -a -m 2 "^FAIL \[" "$log" | cut -c 1-4000 | sed 's/^/    /'
		echo "  last lines of $log:"
		tail -n 40 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
		failures+=("$name: rerun with '$s'")
		;;
	esac
}

if [[ -n $unit ]]; then
	if [[ -x $unit ]]; then
		run_unit
	else
		echo "FAIL unit: $unit is not an executable"
		failed=$((failed + 1))
		failures+=("unit binary $unit missing")
	fi
fi

if [[ $# -gt 0 ]]; then
	scripts=("$@")
else
	scripts=("$here"/integration/t_*.sh)
fi
echo "=== integration (logs in $logdir)"
for s in "${scripts[@]}"; do
	[[ -e $s ]] || continue
	run_script "$s"
done

if ((${#failures[@]})); then
	echo "failures (logs kept in $logdir):"
	printf '  %s\n' "${failures[@]}"
fi
((skipped == 0)) || echo "$skipped skipped"
echo "$passed passed, $failed failed"
((failed == 0))
