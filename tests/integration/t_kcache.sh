#!/usr/bin/env bash
#
# t_kcache: the kernel caches names and attributes while a host works
# alone on the volume, and forgets them before another host may change
# anything (fuse/kcache.c, docs/ARCHITECTURE.md "The kernel's caches").
#
#  - A alone looks up, stats and renames names; when B mounts, A's log
#    says how many the kernel forgot, more than zero (so it did cache);
#  - every change B then makes shows on A at once: an unlink, a file
#    replaced by a directory, chmod, a rename over a name A had looked
#    up, a file grown, a new hard link; a test that fails if A's kernel
#    keeps anything past B's mount (its timeout is 30 s);
#  - B leaves, A is alone and caches again; B mounts again: the same;
#  - fenced while alone: A, with names cached, stops past its lease; B
#    mounts and recovers it; when A wakes, a stat of a name its kernel
#    kept fails with EIO within seconds, not only calls that reach the
#    daemon.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/kcache.sh
source "$(dirname "$0")/kcache.sh"

LUN=$T_DIR/lun

humount() {
	"$VMFS" umount --state-dir "$(state_of "$1")" "$(mp_of "$1")" ||
		fail "host $1: vmfs umount failed"
}

# forgot H: how many entries H's kernel was last told to forget (0: none
# logged).
forgot() {
	sed -n 's/.*the kernel forgot \([0-9]*\) cached names.*/\1/p' "$(log_of "$1")" |
		tail -n 1 | grep . || echo 0
}

# changes_seen ROUND: B changes each name; A must see each at once.
changes_seen() {
	local r=$1 n
	kc_changes "round $r" "$(mp_of A)/w$r" "$(mp_of B)/w$r"
	n=$(forgot A)
	(( n > 0 )) || fail "round $r: A's kernel forgot nothing when B mounted (it cached nothing?)"
	t_log "round $r: A's kernel forgot $n names and attributes as B mounted; every change B made showed on A at once"
}

round() {
	local r=$1 a
	a=$(mp_of A)
	step "round $r: A alone: its kernel caches what it looks up"
	kc_prepare "$a/w$r"
	step "round $r: B mounts; what B changes shows on A at once"
	hmount B
	changes_seen "$r"
	humount B
}

step "mkfs; A mounts alone"
make_lun "$LUN" 1G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
hmount A
grep -q "alone on the volume" "$(log_of A)" || fail "A does not say it is alone"
round 1
alone_again A 1
round 2
alone_again A 2

step "fenced while alone: A's kernel forgets what it kept"
a=$(mp_of A)
mkdir "$a/fz"
echo kept >"$a/fz/kept"
sync "$a/fz/kept"
stat "$a/fz/kept" >/dev/null
stat "$a/fz/kept" >/dev/null
apid=$(vmfsd_pid_of "$(cd "$a" && pwd -P)")
kill -STOP "$apid"
hmount B
kill -CONT "$apid"
t0=$(date +%s%N)
until ! stat "$a/fz/kept" >/dev/null 2>"$T_DIR/fz.err"; do
	(( ($(date +%s%N) - t0) / 1000000000 < 10 )) ||
		fail "a stat of a name A's kernel kept still succeeds 10 s after A woke fenced"
	sleep 0.1
done
grep -q "Input/output error" "$T_DIR/fz.err" ||
	fail "stat on the fenced A did not fail with EIO: $(cat "$T_DIR/fz.err")"
t_log "fenced A: stat of a name its kernel kept failed $(( ($(date +%s%N) - t0) / 1000000 )) ms after it woke: $(cat "$T_DIR/fz.err")"
"$VMFS" umount --state-dir "$(state_of A)" "$a" >/dev/null 2>&1 || true
mountpoint -q "$a" && fail "A still mounted after vmfs umount"
expect_eq "the file A made, read on B" "$(cat "$(mp_of B)/fz/kept")" kept
humount B
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
echo "t_kcache: ok"
