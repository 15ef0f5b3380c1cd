#!/usr/bin/env bash
# make demo: a vmfs volume on a sparse 8 GiB file (the shared LUN) mounted
# by three hosts at once on this machine (three vmfsd with their own state
# directories, ./demo/mnt-A, -B, -C).  Each host writes; `vmfs hosts` and
# `vmfs locks` show the cluster; host C is killed (kill -9 of its vmfsd)
# while it holds a VM disk open, and the survivors recover it and take the
# disk over.  Hosts A and B stay mounted so you can look around;
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
echo "Hosts A and B stay mounted on $A and $B; unmount them with:"
echo "  $BIN/vmfs umount $A; $BIN/vmfs umount $B"
