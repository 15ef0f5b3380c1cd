#!/usr/bin/env bash
#
# t_fsck_random: seeded random damage to the metadata of the reference
# volume (tests/fsck/reference.sh), fsck must survive all of it.  Each
# round copies the reference image, overwrites random bytes (every third
# round whole 512-byte sectors) in the heartbeat region, journal headers,
# cluster headers, allocated inodes, pointer blocks in use and directory
# chunks (tests/fsck/image.py damage), and then:
#
#   vmfs fsck -y   must end within its timeout with an fsck(8) status
#                  (0, 1, 4 or 8): no crash, no hang;
#   vmfs fsck -y   again: the same;
#   vmfs fsck -n   must say 0 or 4 (8 only when the first run gave up);
#   the data       every data block a file owned in the reference is
#                  unchanged on the LUN (fsck writes metadata and free
#                  blocks only), and so is the whole file-block area
#                  unless fsck cloned a block claimed twice.
#
#   t_fsck_random.sh [SEED [ROUND]]     default seed 20240611, 30 rounds;
#   VMFS_FSCK_ROUNDS=N                  with ROUND, only that round
#
# A failing round prints its seed and round and the command that reruns it.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/fsck/reference.sh
source "$T_ROOT/tests/fsck/reference.sh"

SEED=${1:-20240611}
ONLY_ROUND=${2:-}
ROUNDS=${VMFS_FSCK_ROUNDS:-30}
FSCK_TIMEOUT=120
IMAGE_PY=$T_ROOT/tests/fsck/image.py

"$VMFS" fsck --help >/dev/null 2>&1 ||
	skip "this vmfs has no 'fsck' command yet"

step "reference volume"
REF=$T_DIR/ref.img
fsck_ref_build "$REF" "$T_DIR/ref.manifest"
"$VMFS" info --json "$REF" >"$T_DIR/info.json" 2>/dev/null ||
	fail "vmfs info --json of the reference failed"
python3 "$IMAGE_PY" datahash "$T_DIR/info.json" "$REF" >"$T_DIR/before.json"

IMG=$T_DIR/round.img
failed=()
declare -A seen_exit=()

round_fail() {
	local r=$1
	shift
	echo "FAIL round $r (seed $SEED): $*" >&2
	{
		echo "  --- damage:"
		sed 's/^/    /' "$T_DIR/damage.out"
		for f in fsck1 fsck2 fsck3 check; do
			[[ -s $T_DIR/$f.out ]] || continue
			echo "  --- $f:"
			tail -n 30 "$T_DIR/$f.out" | sed 's/^/    /'
		done
		echo "  rerun: VMFS_BIN=$VMFS_BIN VMFS_KEEP=1 $T_SCRIPT $SEED $r"
	} >&2
	failed+=("round $r: $*")
}

# fsck_status RC: an fsck(8) status, not a crash, a signal or a timeout.
fsck_status() {
	case $1 in
	0 | 1 | 4 | 8 | 5 | 9 | 12 | 13) return 0 ;;
	*) return 1 ;;
	esac
}

# run FILE ARGS...: fsck with a timeout, status in $rc.
run_fsck() {
	local out=$1
	shift
	rc=0
	timeout --kill-after=10 "$FSCK_TIMEOUT" "$VMFS" fsck "$@" "$IMG" \
		>"$T_DIR/$out.out" 2>&1 || rc=$?
}

# A sanitizer build reports with exit status 1, which looks like "fixed".
sanitizer_report() {
	grep -qE 'Sanitizer|runtime error:' "$T_DIR/$1.out"
}

one_round() {
	local r=$1 rc rc1 rc2 allow=""

	rm -f "$T_DIR"/{damage,fsck1,fsck2,fsck3,check}.out
	cp --sparse=always "$REF" "$IMG"
	python3 "$IMAGE_PY" damage "$T_DIR/info.json" "$IMG" "$SEED" "$r" \
		>"$T_DIR/damage.out"

	run_fsck fsck1 -y
	rc1=$rc
	if sanitizer_report fsck1; then
		round_fail "$r" "fsck -y: sanitizer report (exit $rc1)"
		return
	fi
	seen_exit[$rc1]=$((${seen_exit[$rc1]:-0} + 1))
	if ! fsck_status "$rc1"; then
		round_fail "$r" "fsck -y exited $rc1 (crash, signal or timeout)"
		return
	fi
	run_fsck fsck2 -y
	rc2=$rc
	if sanitizer_report fsck2; then
		round_fail "$r" "second fsck -y: sanitizer report (exit $rc2)"
		return
	fi
	if ! fsck_status "$rc2"; then
		round_fail "$r" "second fsck -y exited $rc2 (crash, signal or timeout)"
		return
	fi
	run_fsck fsck3 -n
	if sanitizer_report fsck3; then
		round_fail "$r" "fsck -n: sanitizer report (exit $rc)"
		return
	fi
	if [[ $rc != 0 && $rc != 4 ]] && ! [[ $rc == 8 && $rc1 == 8 ]]; then
		round_fail "$r" "fsck -n after two repairs exited $rc (first -y $rc1, second $rc2)"
		return
	fi
	grep -q PR_3_BLOCK_DUP "$T_DIR/fsck1.out" "$T_DIR/fsck2.out" &&
		allow="allow-file-area"
	if ! python3 "$IMAGE_PY" check "$T_DIR/info.json" "$IMG" \
		"$T_DIR/before.json" $allow >"$T_DIR/check.out" 2>&1; then
		round_fail "$r" "fsck changed data outside the metadata"
		return
	fi
	echo "ok   round $r: fsck -y $rc1, again $rc2, -n $rc; $(wc -l <"$T_DIR/damage.out") damages"
}

step "rounds (seed $SEED)"
for ((r = 1; r <= ROUNDS; r++)); do
	[[ -n $ONLY_ROUND && $r != "$ONLY_ROUND" ]] && continue
	one_round "$r" </dev/null
done

step "summary"
for rc in "${!seen_exit[@]}"; do
	t_log "first fsck -y exited $rc in ${seen_exit[$rc]} round(s)"
done
if ((${#failed[@]})); then
	printf '  %s\n' "${failed[@]}" >&2
	fail "${#failed[@]} random-damage rounds failed (seed $SEED)"
fi
t_log "all rounds passed (seed $SEED)"
