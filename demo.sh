#!/usr/bin/env bash
# make demo: a vmfs volume on a sparse 8 GiB file (the shared LUN) mounted
# by three hosts at once on this machine (three vmfsd with their own state
# directories, ./demo/mnt-A, -B, -C).  Each host writes; `vmfs hosts` and
# `vmfs locks` show the cluster; host C is killed (kill -9 of its vmfsd)
# while it holds a VM disk open, and the survivors recover it and take the
# disk over.  Then host A runs a VM (QEMU with the test guest of
# `make guest`) from the datastore: host B lists it running on A, and its
# counter advances on its disk; it is stopped and removed.  Hosts A and B
# stay mounted so you can look around;
# `bin/vmfs umount demo/mnt-A` (and -B) takes them down.
set -euo pipefail
cd "$(dirname "$0")"

BIN=${VMFS_BIN:-./bin}
# VMFS_DEMO_DIR: where the LUN, the mounts and the logs go (tests/integration/t_demo.sh)
DEMO=${VMFS_DEMO_DIR:-./demo}
LUN=$DEMO/lun.img
HOSTS=(A B C)

for h in "${HOSTS[@]}" ""; do
	mp=$DEMO/mnt${h:+-$h}
	if mountpoint -q "$mp" 2>/dev/null; then
		echo "demo: unmounting the previous demo's $mp"
		"$BIN/vmfs" umount "$mp" || fusermount3 -u -z "$mp" 2>/dev/null || true
	fi
done
mkdir -p "$DEMO"
rm -f "$LUN" "$DEMO"/vmfsd-*.log
truncate -s 8G "$LUN"

echo "== vmfs mkfs"
"$BIN/vmfs" mkfs --label demo "$LUN"
for h in "${HOSTS[@]}"; do
	echo
	echo "== host $h: vmfs mount"
	mkdir -p "$DEMO/mnt-$h" "$DEMO/state-$h"
	"$BIN/vmfs" mount --state-dir "$DEMO/state-$h" --host-name "$h" \
		--log-file "$DEMO/vmfsd-$h.log" "$LUN" "$DEMO/mnt-$h"
done
A=$DEMO/mnt-A B=$DEMO/mnt-B C=$DEMO/mnt-C

echo
echo "== each host writes; every host sees all of it"
mkdir -p "$A/vm1" "$B/vm2"
printf 'name = "vm1"\nmemory = 256\ndisk = "vm1-flat.vmdk"\n' >"$A/vm1/vm1.cfg"
"$BIN/vmfs" disk create --size 4G --type thin "$A/vm1/vm1-flat.vmdk"
"$BIN/vmfs" disk create --size 1G --type thin "$B/vm2/vm2-flat.vmdk"
dd if=/dev/urandom of="$A/vm1/vm1-flat.vmdk" bs=1M count=16 oflag=direct conv=notrunc status=none
echo "written by C" >"$C/notes.txt"
ls -ls "$C/vm1" "$A/vm2"
cat "$B/notes.txt"

echo
echo "== host C runs 'VM 2': its disk is open for writing there"
rm -f "$DEMO/vm2.ready"
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"vm2 was here\n", 0)
os.fsync(fd)
open(sys.argv[2], "w").close()
time.sleep(3600)' "$C/vm2/vm2-flat.vmdk" "$DEMO/vm2.ready" &
VM2=$!
until [[ -e $DEMO/vm2.ready ]]; do sleep 0.1; done
echo "host A tries to open it for writing:"
python3 -c '
import os, sys
try:
    os.open(sys.argv[1], os.O_WRONLY)
    print("  opened (it should not have been)")
except OSError as e:
    print("  " + os.strerror(e.errno))' "$A/vm2/vm2-flat.vmdk"
grep "refused" "$DEMO/vmfsd-A.log" | tail -n 1 | sed 's/^.*vol: /  vmfsd A: /'

echo
echo "== vmfs hosts $LUN"
"$BIN/vmfs" hosts "$LUN"
echo
echo "== vmfs locks $LUN"
"$BIN/vmfs" locks "$LUN"

echo
echo "== host C dies (kill -9 of its vmfsd); A and B keep working"
cpid=
for d in /proc/[0-9]*; do
	if [[ $(readlink "$d/exe" 2>/dev/null) == "$(cd "$BIN" && pwd -P)/vmfsd" ]] &&
	   tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qx -- "$(cd "$C" && pwd -P)"; then
		cpid=${d#/proc/}
	fi
done
t0=$(date +%s%N)
kill -9 "$cpid"
kill "$VM2" 2>/dev/null || true
wait "$VM2" 2>/dev/null || true
fusermount3 -u -z "$C" 2>/dev/null || true
rm -f "/dev/shm/qb-vmfsd-$cpid-"* 2>/dev/null || true
echo "created by B while C is dead" >"$B/vm1/after-the-crash.txt"
until (exec 9>>"$A/vm2/vm2-flat.vmdk") 2>/dev/null; do
	sleep 0.2
done
echo "host A opened C's disk for writing $(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill"
grep -h "recovered host C" "$DEMO"/vmfsd-[AB].log | sed 's/^.*vol: /  /'
head -c 13 "$A/vm2/vm2-flat.vmdk"
echo
echo "== vmfs hosts $LUN"
"$BIN/vmfs" hosts "$LUN"

echo
echo "== a VM on the datastore: created from host A, run by host A, seen by B"
# The test guest of `make guest`: its /init writes "vmfs-guest-counter N"
# to the first block of its disk every 100 ms.  TCG: it boots in seconds
# and does not depend on a /dev/kvm (nested virtualisation may accept VMs
# that then never run).
GUEST=${VMFS_GUEST:-./build/guest}
VM=$A/vms/demo1
vm() { local h=$1; shift; VMFS_STATE_DIR=$DEMO/state-$h "$BIN/vmfs" vm "$@"; }
# counter FILE: the guest's counter on its disk, read with O_DIRECT.
counter() {
	dd if="$1" bs=512 count=1 iflag=direct 2>/dev/null | head -c 64 |
		tr -d '\0' | sed -n 's/^vmfs-guest-counter \([0-9]*\)$/\1/p' | head -n 1
}
# wait_counter FILE ABOVE: until the counter exceeds ABOVE (120 s).
wait_counter() {
	local i c=
	for ((i = 0; i < 1200; i++)); do
		c=$(counter "$1")
		[[ -n $c && $c -gt $2 ]] && { echo "$c"; return 0; }
		sleep 0.1
	done
	echo "demo: the guest's counter stayed at '${c:-none}'; its console:" >&2
	tail -n 20 "$(dirname "$1")/console.log" >&2 || true
	return 1
}
# A demo that fails while the VM runs stops it (or the mounts could not
# be unmounted).
trap 'vm A stop --force "$VM" >/dev/null 2>&1 || true' EXIT
mkdir -p "$A/vms"
vm A create "$VM" --memory 256M --cpus 1 --disk 128M:thin --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img"
ls -ls "$B/vms/demo1"
t0=$(date +%s%N)
vm A start "$VM"
c1=$(wait_counter "$VM/disk0.img" 0)
echo "the guest wrote counter $c1 to its disk $(( ($(date +%s%N) - t0) / 1000000 )) ms after vmfs vm start"
c2=$(wait_counter "$VM/disk0.img" $((c1 + 10)))
echo "its counter advanced on the datastore: $c1 -> $c2"
echo "-- the end of its serial console ($VM/console.log):"
# (the last line may be half written: left out)
tr -d '\r' <"$VM/console.log" | grep -v '^$' | tail -n 5 | head -n 4 | sed 's/^/  /'
echo "== vmfs vm list, from host B"
vm B list "$B"
echo "== host B tries to start it too"
vm B start "$B/vms/demo1" 2>&1 | sed 's/^/  /' || true
echo "== vmfs vm stop (ACPI power-down), vmfs vm destroy"
vm A stop "$VM"
vm B list "$B"
vm B destroy "$B/vms/demo1"
trap - EXIT

echo
echo "Hosts A and B stay mounted on $A and $B; unmount them with:"
echo "  $BIN/vmfs umount $A; $BIN/vmfs umount $B"
