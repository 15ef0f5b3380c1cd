#!/usr/bin/env bash
#
# bench/mkfs64t.sh: a datastore-sized LUN.  On a sparse LUN file of
# BENCH_SIZE (default 64T), with mkfs's defaults:
#
#   mkfs_s        wall time of `vmfs mkfs`
#   mkfs_bytes    what mkfs left allocated in the sparse file (du)
#   mount_s       `vmfs mount` until the mount is ready (it loads every
#                 resource-cluster header), and vmfsd's resident memory;
#                 the first mount also creates the host state DB (fsync on
#                 BENCH_DIR's disk), so the volume is mounted a second time
#                 at the end
#   fsck_s        `vmfs fsck -n` of the fresh volume, then again after
#                 BENCH_FILES files were made (several inode clusters
#                 initialised at first use)
#
# Prints figures; asserts nothing.  ext4 takes no file over 16 TiB: when
# BENCH_DIR (default /tmp) refuses the size, the LUN goes to /dev/shm
# (tmpfs, which takes O_DIRECT since Linux 6.6) and the script says so.
#
#   VMFS_BIN      vmfs and vmfsd (default: <repo>/bin), e.g. an older
#                 commit's bin/ to compare
#   BENCH_DIR     where the LUN goes (default /tmp)
#   BENCH_SIZE    LUN size (default 64T)
#   BENCH_FILES   files made before the second fsck (default 5000)

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VMFS_BIN=${VMFS_BIN:-$root/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
vmfs=$VMFS_BIN/vmfs
size=${BENCH_SIZE:-64T}
nfiles=${BENCH_FILES:-5000}

[[ -x $vmfs ]] || { echo "mkfs64t.sh: no $vmfs; run 'make' or set VMFS_BIN" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

bench_setup mkfs64t
lun=$dir/lun
if ! truncate -s "$size" "$lun" 2>/dev/null; then
	echo "$(findmnt -n -o FSTYPE -T "$dir" | head -n 1) under $dir takes no $size file; using /dev/shm"
	rm -f "$lun"
	shm=$(mktemp -d /dev/shm/vmfs-bench-mkfs64t.XXXXXX)
	bench_extra_cleanup+=("$shm")
	lun=$shm/lun
	truncate -s "$size" "$lun"
fi

now() {
	date +%s.%N
}

secs() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "LUN: $lun, $size sparse, on $(findmnt -n -o FSTYPE,SOURCE -T "$lun" | head -n 1)"
df -h "$(dirname "$lun")" | sed 's/^/  /'
echo

t0=$(now)
"$vmfs" mkfs --label bench64t "$lun" >"$dir/mkfs.out"
t1=$(now)
bytes=$(du -B1 "$lun" | cut -f1)
printf 'mkfs:   %6s s, %s bytes allocated (%s MiB)\n' "$(secs "$t0" "$t1")" "$bytes" $((bytes >> 20))
grep -E 'inodes|blocks' "$dir/mkfs.out" | sed 's/^ */        /'
"$vmfs" info --json "$lun" | python3 -c '
import json, sys
a = json.load(sys.stdin)["areas"]
print("        cluster headers: " + ", ".join(
    "%s %d x %d" % (k, a[k]["clusters"], a[k]["per_cluster"])
    for k in ("inodes", "pointer_blocks", "small_blocks", "file_blocks")))'

t0=$(now)
"$vmfs" fsck -n "$lun" >"$dir/fsck.out" || true
t1=$(now)
printf 'fsck -n (fresh):  %6s s  %s\n' "$(secs "$t0" "$t1")" "$(tail -n 1 "$dir/fsck.out")"

t0=$(now)
bench_mount "$lun"
t1=$(now)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$vmfsd_pid/status")
printf 'mount:  %6s s, vmfsd RSS %s MiB\n' "$(secs "$t0" "$t1")" $((rss >> 10))

t0=$(now)
python3 - "$mp" "$nfiles" <<'EOF'
import os, sys
d = os.path.join(sys.argv[1], "vms")
os.mkdir(d)
for i in range(int(sys.argv[2])):
    os.close(os.open(os.path.join(d, "f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
t1=$(now)
printf 'create: %6s s for %s files\n' "$(secs "$t0" "$t1")" "$nfiles"
t0=$(now)
"$vmfs" umount --state-dir "$state" "$mp"
t1=$(now)
printf 'umount: %6s s\n' "$(secs "$t0" "$t1")"
bytes=$(du -B1 "$lun" | cut -f1)
t0=$(now)
"$vmfs" fsck -n "$lun" >"$dir/fsck.out" || true
t1=$(now)
printf 'fsck -n (%s files): %6s s  %s\n' "$nfiles" "$(secs "$t0" "$t1")" "$(tail -n 1 "$dir/fsck.out")"
printf 'LUN allocated after the files: %s MiB\n' $((bytes >> 20))
t0=$(now)
bench_mount "$lun"
t1=$(now)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$vmfsd_pid/status")
printf 'mount (again): %6s s, vmfsd RSS %s MiB\n' "$(secs "$t0" "$t1")" $((rss >> 10))
