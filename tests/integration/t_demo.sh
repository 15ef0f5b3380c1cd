#!/usr/bin/env bash
#
# t_demo: `make demo`'s script (demo.sh) runs to the end on a fresh
# directory, as on a fresh clone (it once failed there: the directory did
# not exist): three hosts mount, host C dies holding a VM disk open, host
# A opens it after the recovery and reads what C fsync'ed.  Its two
# remaining mounts are then unmounted.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

demo=$T_DIR/demo   # does not exist yet
step "demo.sh on a directory that does not exist yet"
VMFS_BIN=$VMFS_BIN VMFS_DEMO_DIR=$demo "$T_ROOT/demo.sh" >"$T_DIR/demo.out" 2>&1 ||
	fail "demo.sh failed: $(tail -n 20 "$T_DIR/demo.out")"
grep -q "host A opened C's disk for writing" "$T_DIR/demo.out" ||
	fail "the demo did not show host A taking over C's disk: $(tail -n 20 "$T_DIR/demo.out")"
grep -q "^vm2 was here" "$T_DIR/demo.out" ||
	fail "the demo did not read back what host C fsync'ed"
for h in A B; do
	mountpoint -q "$demo/mnt-$h" || fail "the demo left host $h unmounted"
	"$VMFS" umount "$demo/mnt-$h" || fail "vmfs umount $demo/mnt-$h failed"
done
"$VMFS" fsck -n "$demo/lun.img" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the demo: $(cat "$T_DIR/fsck.out")"
t_log "ok"
