#!/usr/bin/env bash
#
# t_demo: `make demo`'s script (demo.sh) runs to the end on a fresh
# directory, as on a fresh clone (it once failed there: the directory did
# not exist): three hosts mount, host C dies holding a VM disk open, host
# A opens it after the recovery and reads what C fsync'ed.  Then the VM
# part: host A runs the test guest from the datastore, host B lists it
# running on A, its counter advances on its disk, it stops.  The two
# remaining mounts are then unmounted.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

t_need_guest
demo=$T_DIR/demo   # does not exist yet

# A demo that failed half-way leaves its mounts (and maybe its VM).
demo_cleanup() {
	local rc=$? h
	set +e
	for h in A B C; do
		mountpoint -q "$demo/mnt-$h" 2>/dev/null || continue
		"$VMFS" umount --stop-vms --state-dir "$demo/state-$h" \
			"$demo/mnt-$h" >/dev/null 2>&1 || umount -l "$demo/mnt-$h"
	done
	(exit "$rc")
	t_cleanup
}
trap demo_cleanup EXIT

step "demo.sh on a directory that does not exist yet"
VMFS_BIN=$VMFS_BIN VMFS_GUEST=$GUEST VMFS_DEMO_DIR=$demo "$T_ROOT/demo.sh" \
	>"$T_DIR/demo.out" 2>&1 ||
	fail "demo.sh failed: $(tail -n 20 "$T_DIR/demo.out")"
grep -q "host A opened C's disk for writing" "$T_DIR/demo.out" ||
	fail "the demo did not show host A taking over C's disk: $(tail -n 20 "$T_DIR/demo.out")"
grep -q "^vm2 was here" "$T_DIR/demo.out" ||
	fail "the demo did not read back what host C fsync'ed"
step "the VM part: B listed it running on A, its counter advanced"
# `vmfs vm list` from host B, while the VM ran.
grep -A3 "^== vmfs vm list, from host B" "$T_DIR/demo.out" |
	grep -Eq "/vms/demo1 +running +A( |$)" ||
	fail "host B did not list the VM running on host A: $(grep -A3 "^== vmfs vm list" "$T_DIR/demo.out")"
grep -q "runs on host A" "$T_DIR/demo.out" ||
	fail "host B's start of the running VM did not fail naming host A"
read -r c1 c2 < <(sed -n 's/^its counter advanced on the datastore: \([0-9]*\) -> \([0-9]*\)$/\1 \2/p' \
	"$T_DIR/demo.out")
[[ -n ${c1:-} && -n ${c2:-} && $c2 -gt $c1 && $c1 -gt 0 ]] ||
	fail "the guest's counter did not advance on its disk (${c1:-none} -> ${c2:-none})"
[[ -e $demo/mnt-A/vms/demo1 ]] && fail "the demo left its VM's directory"
for h in A B; do
	mountpoint -q "$demo/mnt-$h" || fail "the demo left host $h unmounted"
	"$VMFS" umount "$demo/mnt-$h" || fail "vmfs umount $demo/mnt-$h failed"
done
"$VMFS" fsck -n "$demo/lun.img" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the demo: $(cat "$T_DIR/fsck.out")"
t_log "ok"
