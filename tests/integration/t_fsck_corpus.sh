#!/usr/bin/env bash
#
# t_fsck_corpus: the fsck test corpus.  One reference volume with
# content of every kind (tests/fsck/reference.sh) is made through a real
# mount; then, for each case of tests/fsck/cases.txt, a copy of it is
# damaged with `vmfs-corrupt --problem CODE --seed SEED` (the test
# program of tools/corrupt/, in VMFS_BUILD) and
#
#   vmfs fsck -y   must name CODE among its problems and exit 1 (fixed;
#                  PR_0_NOT_VOLUME: 8, PR_0_GEOMETRY: 4 or 8, no more),
#   vmfs fsck -n   must then exit 0 (clean),
#   the volume     must mount, and every file the corruption tool did not
#                  name as a target (all of them for cases marked "none")
#                  must read back exactly as before: data, symlink
#                  targets, xattrs.
#
# Every case runs even when one fails; a failure prints the damage, both
# fsck outputs, the files that differ and the command that reruns it.
#
#   t_fsck_corpus.sh [CODE [SEED]]    all cases, or those of CODE (a name
#                                     like PR_3_PTR_RANGE), or one case
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/fsck/reference.sh
source "$T_ROOT/tests/fsck/reference.sh"

CASES=$T_ROOT/tests/fsck/cases.txt
ONLY_CODE=${1:-}
ONLY_SEED=${2:-}
FSCK_TIMEOUT=120

"$VMFS" fsck --help >/dev/null 2>&1 ||
	skip "this vmfs has no 'fsck' command yet"
[[ -x $VMFS_CORRUPT ]] ||
	fail "no $VMFS_CORRUPT: build it with 'make build/vmfs-corrupt' or set VMFS_BUILD"

step "reference volume"
REF=$T_DIR/ref.img
REF_MANIFEST=$T_DIR/ref.manifest
fsck_ref_build "$REF" "$REF_MANIFEST"
"$VMFS" fsck -n "$REF" >"$T_DIR/ref-fsck.out" 2>&1 ||
	fail "fsck -n of the undamaged reference volume exited $?: $(cat "$T_DIR/ref-fsck.out")"

CASE_IMG=$T_DIR/case.img
CASE_MP=$T_DIR/case-mnt
mkdir -p "$CASE_MP"
CASE_MP=$(cd "$CASE_MP" && pwd -P)
T_MOUNTS+=("$CASE_MP")
ncases=0
failed=()

# Print one file indented, at most N lines of it.
show() {
	local what=$1 file=$2 n=${3:-40}
	echo "  --- $what:"
	tail -n "$n" "$file" | sed 's/^/    /'
}

case_fail() {
	local code=$1 seed=$2
	shift 2
	echo "FAIL case $code seed $seed: $*" >&2
	{
		show "vmfs-corrupt" "$T_DIR/corrupt.out"
		[[ -s $T_DIR/fsck1.out ]] && show "vmfs fsck -y" "$T_DIR/fsck1.out"
		[[ -s $T_DIR/fsck2.out ]] && show "vmfs fsck -n" "$T_DIR/fsck2.out"
		[[ -s $T_DIR/check.out ]] && show "files" "$T_DIR/check.out"
		[[ -s $T_DIR/case-mount.err ]] && show "mount" "$T_DIR/case-mount.err"
		echo "  rerun: VMFS_BIN=$VMFS_BIN VMFS_BUILD=$VMFS_BUILD VMFS_KEEP=1 $T_SCRIPT $code $seed"
	} >&2
	failed+=("$code $seed: $*")
}

# Mount the case image without lib.sh's fail(): a mount failure is a
# case failure, not the end of the corpus.
case_mount() {
	local pid
	"$VMFS" mount --state-dir "$T_STATE" \
		--log-file "$T_DIR/vmfsd-case-mnt.log" "$CASE_IMG" "$CASE_MP" \
		>"$T_DIR/case-mount.err" 2>&1 || return 1
	pid=$(vmfsd_pid_of "$CASE_MP") && T_PIDS+=("$pid")
	return 0
}

case_umount() {
	"$VMFS" umount --state-dir "$T_STATE" "$CASE_MP" >/dev/null 2>&1 ||
		umount -l "$CASE_MP" 2>/dev/null || true
}

# run_case CODE SEED EXPECT: one damage, two fsck runs, the files.
run_case() {
	local code=$1 seed=$2 expect=$3 rc1=0 rc2=0 t0=$SECONDS
	local want1=1 targets=()

	rm -f "$T_DIR"/{corrupt,fsck1,fsck2,check}.out "$T_DIR/case-mount.err"
	cp --sparse=always "$REF" "$CASE_IMG"
	if ! "$VMFS_CORRUPT" --problem "$code" --seed "$seed" "$CASE_IMG" \
		>"$T_DIR/corrupt.out" 2>&1; then
		case_fail "$code" "$seed" "the corruption tool failed"
		return
	fi
	mapfile -t targets < <(sed -n 's/^target-path: //p' "$T_DIR/corrupt.out")

	timeout --kill-after=10 "$FSCK_TIMEOUT" "$VMFS" fsck -y "$CASE_IMG" \
		>"$T_DIR/fsck1.out" 2>&1 || rc1=$?
	# A sanitizer build reports with exit status 1, which looks like "fixed".
	if grep -qE 'Sanitizer|runtime error:' "$T_DIR/fsck1.out"; then
		case_fail "$code" "$seed" "fsck -y: sanitizer report (exit $rc1)"
		return
	fi
	case $code in
	PR_0_NOT_VOLUME) want1=8 ;;
	PR_0_GEOMETRY) [[ $rc1 == 4 ]] && want1=4 || want1=8 ;;
	esac
	if [[ $rc1 != "$want1" ]]; then
		case_fail "$code" "$seed" "fsck -y exited $rc1, expected $want1"
		return
	fi
	if ! grep -q -- "$code" "$T_DIR/fsck1.out"; then
		case_fail "$code" "$seed" "fsck -y exited $rc1 but did not report $code" \
			"(reported: $(grep -o 'PR_[0-9]_[A-Z_]*' "$T_DIR/fsck1.out" | sort -u | tr '\n' ' '))"
		return
	fi
	if ((want1 != 1)); then
		echo "ok   $code seed $seed: fsck -y exit $rc1 ($((SECONDS - t0)) s)"
		return
	fi
	timeout --kill-after=10 "$FSCK_TIMEOUT" "$VMFS" fsck -n "$CASE_IMG" \
		>"$T_DIR/fsck2.out" 2>&1 || rc2=$?
	if [[ $rc2 != 0 ]] || grep -qE 'Sanitizer|runtime error:' "$T_DIR/fsck2.out"; then
		case_fail "$code" "$seed" "fsck -n after the repair exited $rc2, expected 0"
		return
	fi
	if ! case_mount; then
		case_fail "$code" "$seed" "the repaired volume does not mount"
		return
	fi
	fsck_manifest "$CASE_MP" "$T_DIR/case.manifest" 2>"$T_DIR/check.out" || true
	case_umount
	[[ $expect == target ]] || targets=()
	if ! fsck_manifest_check "$REF_MANIFEST" "$T_DIR/case.manifest" \
		"${targets[@]}" >>"$T_DIR/check.out" 2>&1; then
		case_fail "$code" "$seed" "files that were not the target changed" \
			"(targets: ${targets[*]:-none})"
		return
	fi
	echo "ok   $code seed $seed: fixed, clean, $(tail -n 1 "$T_DIR/check.out") ($((SECONDS - t0)) s)"
}

step "cases from ${CASES#"$T_ROOT"/}"
while read -r code seed expect _; do
	[[ -z $code || $code == \#* ]] && continue
	[[ -n $ONLY_CODE && $code != "$ONLY_CODE" ]] && continue
	[[ -n $ONLY_SEED && $seed != "$ONLY_SEED" ]] && continue
	ncases=$((ncases + 1))
	run_case "$code" "${seed:-0}" "${expect:-none}" </dev/null
done <"$CASES"

if [[ -n $ONLY_CODE ]] && ((ncases == 0)); then
	# A code with no case in the table still runs once, seed 0.
	ncases=1
	run_case "$ONLY_CODE" "${ONLY_SEED:-0}" target </dev/null
fi

step "summary"
if ((${#failed[@]})); then
	printf '  %s\n' "${failed[@]}" >&2
	fail "${#failed[@]} of $ncases fsck corpus cases failed"
fi
t_log "all $ncases cases passed"
