#!/usr/bin/env bash
#
# tests/fuzz/run.sh: run each libFuzzer harness for a bounded time and
# print one line per harness.  `make fuzz` builds the harnesses and calls
# this; run it by hand to fuzz longer or to rerun a crash:
#
#   tests/fuzz/run.sh build-fuzz/fuzz_geom ...      fuzz each for FUZZ_SECONDS
#   tests/fuzz/run.sh --seeds build-fuzz/fuzz_geom  rewrite its seed corpus
#   tests/fuzz/run.sh --replay build-fuzz/fuzz_geom rerun tests/fuzz/crashes/geom-*
#   build-fuzz/fuzz_geom tests/fuzz/crashes/geom-X  rerun one input
#
#   FUZZ_SECONDS   per harness (default 60)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang
#                  (default 20)
#   FUZZ_ARGS      more libFuzzer flags (e.g. "-jobs=2 -workers=2")
#   VMFS_FUZZ_DIR  where scratch LUNs go (default /tmp; needs O_DIRECT)
#
# Seeds are tests/fuzz/corpus/<name>/ (small, committed, rewritten by
# --seeds from the library itself).  New inputs the fuzzer finds go to
# <build>/corpus/<name>/, crashes, leaks and hangs to
# <build>/artifacts/<name>/, the full log to <build>/logs/<name>.log; none
# of those are committed: copy a crash worth keeping to tests/fuzz/crashes/.
# Exit status: 0 if every harness ran its time without a finding.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-20}
seeds_only=0

if [[ ${1:-} == --seeds ]]; then
	seeds_only=1
	shift
fi
if [[ $# -eq 0 || $1 == -* && $1 != --replay ]]; then
	echo "usage: $0 [--seeds | --replay] build-fuzz/fuzz_NAME..." >&2
	exit 2
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# field KEY FILE: value of libFuzzer's final "stat::KEY: N" line.
field() {
	sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

# A harness that died (crash, hang) skipped its exit handler: remove its
# spill directory (fuzz_fsck), named after its pid.
spill_clean() {
	rm -rf "${VMFS_FUZZ_DIR:-/tmp}/vmfs-fuzz-fsck-$1."*
}

# --replay: every saved finding of each harness, one line each.  The fsck
# findings need the strict check (a second run that is not clean).
if [[ $1 == --replay ]]; then
	shift
	status=0
	out=$(mktemp /tmp/vmfs-fuzz-replay.XXXXXX)
	trap 'rm -f "$out"' EXIT
	for prog in "$@"; do
		name=${prog##*/fuzz_}
		for input in "$here"/crashes/"$name"-*; do
			[[ -f $input ]] || continue
			# libFuzzer's own -timeout ends a hang.
			VMFS_FUZZ_FSCK_STRICT=1 "$prog" -timeout="$timeout" \
				"$input" >"$out" 2>&1 &
			pid=$!
			wait $pid
			rc=$?
			spill_clean $pid
			if ((rc == 0)); then
				echo "fixed        ${input#"$here"/}"
			else
				status=1
				why=$(grep -m1 -E 'fuzz harness:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$out" | cut -c1-150)
				echo "still fails  ${input#"$here"/}: $why"
			fi
		done
	done
	exit $status
fi

status=0
((seeds_only)) ||
	printf '%-10s %-8s %10s %9s %7s %7s %8s  %s\n' harness result runs exec/s cov corpus rss_mb detail
for prog in "$@"; do
	name=${prog##*/fuzz_}
	build=$(dirname "$prog")
	seeds=$here/corpus/$name
	if [[ ! -x $prog ]]; then
		echo "$0: no $prog; run 'make fuzz-build'" >&2
		status=1
		continue
	fi
	if ((seeds_only)); then
		mkdir -p "$seeds"
		if VMFS_FUZZ_WRITE_SEEDS=$seeds "$prog"; then
			echo "$name: seeds in $seeds: $(ls "$seeds" | wc -l) files"
		else
			echo "$name: writing seeds failed" >&2
			status=1
		fi
		continue
	fi
	work=$build/corpus/$name
	arts=$build/artifacts/$name
	log=$build/logs/$name.log
	mkdir -p "$work" "$arts" "$(dirname "$log")" "$seeds"
	# The first corpus dir receives new inputs; the seeds stay as they are.
	# shellcheck disable=SC2086
	"$prog" -max_total_time="$seconds" -timeout="$timeout" \
		-rss_limit_mb=4096 -print_final_stats=1 \
		-artifact_prefix="$arts/" ${FUZZ_ARGS:-} "$work" "$seeds" \
		>"$log" 2>&1 &
	pid=$!
	wait $pid
	rc=$?
	spill_clean $pid
	runs=$(field number_of_executed_units "$log")
	eps=$(field average_exec_per_sec "$log")
	rss=$(field peak_rss_mb "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
	if ((rc == 0)); then
		result=ok
		detail=
	else
		status=1
		result=FAIL
		detail=$(grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz harness:|==[0-9]+== ERROR: libFuzzer)' "$log" | cut -c1-120)
		art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		[[ -n $art ]] && detail="$detail; input $art"
		detail="$detail; log $log"
	fi
	printf '%-10s %-8s %10s %9s %7s %7s %8s  %s\n' "$name" "$result" \
		"${runs:--}" "${eps:--}" "${cov:--}" "${corp:--}" "${rss:--}" "$detail"
done
exit $status
