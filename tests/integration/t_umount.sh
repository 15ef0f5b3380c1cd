#!/usr/bin/env bash
#
# t_umount: what `vmfs umount` and `vmfs mount` say when the daemon is not
# there to answer, and when it could not close the volume.
#
#   - vmfsd killed: `vmfs mount` over the dead FUSE mount ("Transport
#     endpoint is not connected") refuses and says to run `vmfs umount`
#     first; `vmfs umount` (same, right state dir) detaches the dead
#     mount, says the daemon had died and the volume was not closed, and
#     exits 1; the volume then mounts again;
#   - the volume cannot be closed: the LUN lives on a small tmpfs; with a
#     transaction pending (--commit-ms 60000), the LUN file's blocks are
#     punched out and the tmpfs filled, so every write vmfsd makes while
#     closing fails (ENOSPC).  `vmfs umount` unmounts, exits 1 and prints
#     vmfsd's "closing volume ... failed ... run 'vmfs fsck ...'" (which
#     the daemon hands over in its reply on the control socket);
#   - a clean umount exits 0 and prints nothing.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
SMALL=$T_DIR/small           # the tmpfs for the close that fails

# Our tmpfs, by path, whatever happens to the script.
umount_small() {
	mountpoint -q "$SMALL" 2>/dev/null && umount "$SMALL"
	return 0
}
trap 'umount_small; t_cleanup' EXIT

step "a clean umount exits 0 and prints nothing"
make_lun "$LUN" 256M
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
t_mount "$LUN" "$MP"
echo data >"$MP/f"
"$VMFS" umount --state-dir "$T_STATE" "$MP" >"$T_DIR/out" 2>&1 ||
	fail "vmfs umount of a healthy mount failed: $(cat "$T_DIR/out")"
[[ ! -s $T_DIR/out ]] || fail "a clean umount printed: $(cat "$T_DIR/out")"

step "vmfsd killed: mount over the dead mount refuses, umount says what happened"
t_mount "$LUN" "$MP"
mp=$(cd "$MP" && pwd -P)
pid=$(vmfsd_pid_of "$mp")
t_kill_vmfsd_only "$pid"
stat "$mp" >/dev/null 2>&1 && fail "$mp still answers after its vmfsd was killed"
expect_fail 1 "dead FUSE mount .*not connected.*run 'vmfs umount $mp' first" \
	"$VMFS" mount --state-dir "$T_STATE" "$LUN" "$mp"
expect_fail 1 "vmfsd serving $mp had died .*not closed.*detached the dead mount.*fsck -n" \
	"$VMFS" umount --state-dir "$T_STATE" "$mp"
grep -q "pass the --state-dir" "$T_DIR/err" &&
	fail "umount blames the state dir: $(cat "$T_DIR/err")"
grep -qs " $mp fuse" /proc/self/mounts && fail "$mp is still mounted after vmfs umount"
t_mount "$LUN" "$MP"
[[ $(cat "$MP/f") == data ]] || fail "the file written before the kill is gone"
t_umount "$MP"

step "the volume cannot be closed: umount exits 1 and says so"
mkdir -p "$SMALL"
mount -t tmpfs -o size=64M tmpfs "$SMALL" || skip "cannot mount a tmpfs here"
make_lun "$SMALL/lun" 256M
t_mkfs "$SMALL/lun" --max-hosts 4 --journal-size 1M
t_mount "$SMALL/lun" "$MP" --commit-ms 60000
mkdir "$MP/d"
for i in $(seq 1 20); do echo "$i" >"$MP/d/f$i"; done
# Free every page of the LUN file, then take them all: each write the
# daemon makes from now on needs a page the tmpfs no longer has.
fallocate -p -o 0 -l 256M "$SMALL/lun"
dd if=/dev/zero of="$SMALL/filler" bs=1M status=none 2>/dev/null || true
rc=0
"$VMFS" umount --state-dir "$T_STATE" "$MP" >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
expect_eq "vmfs umount exit when the close fails" "$rc" 1
grep -qE "did not close cleanly: closing volume [0-9a-f-]+ failed: .*run 'vmfs fsck $SMALL/lun'" "$T_DIR/err" ||
	fail "umount does not say the close failed: $(cat "$T_DIR/err")"
mountpoint -q "$MP" && fail "$MP still mounted after the failed close"
rm -f "$SMALL/filler"
umount_small

t_log "PASS"
