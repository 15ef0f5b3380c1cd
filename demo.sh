#!/usr/bin/env bash
# make demo: a vmfs volume on a sparse 8 GiB file, mounted through FUSE on
# ./demo/mnt, with a VM directory and a thin disk in it, then `vmfs info`.
# The mount stays up so you can look around; `bin/vmfs umount demo/mnt`
# takes it down.
set -euo pipefail
cd "$(dirname "$0")"

BIN=${VMFS_BIN:-./bin}
DEMO=./demo
LUN=$DEMO/lun.img
MNT=$DEMO/mnt
STATE=$DEMO/state

mkdir -p "$MNT" "$STATE"
if mountpoint -q "$MNT"; then
	echo "demo: unmounting the previous demo volume"
	"$BIN/vmfs" umount "$MNT"
fi
rm -f "$LUN"
truncate -s 8G "$LUN"

echo "== vmfs mkfs"
"$BIN/vmfs" mkfs --label demo "$LUN"
echo
echo "== vmfs mount"
"$BIN/vmfs" mount --state-dir "$STATE" "$LUN" "$MNT"
echo
echo "== a VM directory with a 4 GiB thin disk and a 64 MiB eager-zeroed one"
mkdir -p "$MNT/vm1"
printf 'name = "vm1"\nmemory = 256\ndisk = "vm1-flat.vmdk"\n' > "$MNT/vm1/vm1.cfg"
"$BIN/vmfs" disk create --size 4G --type thin "$MNT/vm1/vm1-flat.vmdk"
"$BIN/vmfs" disk create --size 64M --type eagerzeroedthick "$MNT/vm1/swap-flat.vmdk"
dd if=/dev/urandom of="$MNT/vm1/vm1-flat.vmdk" bs=1M count=16 oflag=direct conv=notrunc status=none
ls -ls "$MNT/vm1"
"$BIN/vmfs" disk info "$MNT/vm1/vm1-flat.vmdk"
echo
echo "== vmfs info"
"$BIN/vmfs" info --state-dir "$STATE" "$MNT"
echo
df -h "$MNT"
echo
echo "The volume stays mounted on $MNT; unmount it with:"
echo "  $BIN/vmfs umount $MNT"
