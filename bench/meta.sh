#!/usr/bin/env bash
#
# bench/meta.sh: metadata operations per second through a mount, and what
# durability costs, each timed in-process by a python3 loop (no fork per
# file), then the same on ext4 on a loop device over a LUN file of the
# same size, in the same run, and the ratio vmfs / ext4:
#
#   create/s, stat/s, unlink/s   N empty files in one directory
#   create+fsync/s               M files: create, write 4 KiB, fsync,
#                                close (the durability an application
#                                that fsyncs asks for, whatever the
#                                engine does in between)
#   fsync median / p99           K times "write 4 KiB at the end of one
#                                file, fsync" (time.perf_counter_ns
#                                around the pair)
#
# Then the floor FUSE sets: the time of one synchronous request through
# the mount (a getxattr of a name no file has: one request, next to no
# work in vmfsd), and the most creates and unlinks per second any FUSE
# file system could make here at 3 and 2 such requests each (what the
# kernel sends for them with default_permissions: bench/RESULTS.md,
# twenty-third session), next to ext4's.
#
# The vmfs host is alone on its volume, so the kernel caches its names
# and attributes (fuse/kcache.c) as it does ext4's.  Prints figures;
# asserts nothing.  Needs root (losetup, mount) for the ext4 line.
#
#   VMFS_BIN           vmfs and vmfsd (default: <repo>/bin); any build
#                      with the same command line, e.g. an older commit's
#                      bin/ to compare before and after a change
#   BENCH_DIR          where the LUN goes (default /tmp)
#   BENCH_FILES        N (default 20000)
#   BENCH_SYNC_FILES   M (default 1000; each file takes a 64 KiB small
#                      block, so keep M well under the volume's count)
#   BENCH_FSYNCS       K (default 2000)
#   BENCH_RTTS         getxattr calls timed for the floor (default 50000)
#   BENCH_NATIVE=0     skip the ext4 reference

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VMFS_BIN=${VMFS_BIN:-$root/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
vmfs=$VMFS_BIN/vmfs
nfiles=${BENCH_FILES:-20000}
nsync=${BENCH_SYNC_FILES:-1000}
nfsync=${BENCH_FSYNCS:-2000}
nrtt=${BENCH_RTTS:-50000}

command -v python3 >/dev/null || { echo "meta.sh: python3 is needed" >&2; exit 1; }
[[ -x $vmfs ]] || { echo "meta.sh: no $vmfs; run 'make' or set VMFS_BIN" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_setup meta
loopdev=
meta_cleanup() {
	set +e
	mountpoint -q "$dir/ext4" && umount "$dir/ext4"
	[[ -n $loopdev ]] && losetup -d "$loopdev"
	bench_cleanup
}
trap meta_cleanup EXIT

# ops DIR LABEL: one line "LABEL create/s stat/s unlink/s create+fsync/s
# fsync-median-ms fsync-p99-ms".
ops() {
	python3 - "$1" "$2" "$nfiles" "$nsync" "$nfsync" <<'EOF'
import os, sys, time
d, label = sys.argv[1], sys.argv[2]
n, nsync, nfsync = (int(x) for x in sys.argv[3:6])
meta = os.path.join(d, "meta")
os.mkdir(meta)
names = [os.path.join(meta, "f%06d" % i) for i in range(n)]
rates = []
def timed(fn, paths):
    t = time.perf_counter_ns()
    for p in paths:
        fn(p)
    rates.append(len(paths) / ((time.perf_counter_ns() - t) / 1e9))
timed(lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)), names)
timed(os.stat, names)
timed(os.unlink, names)

# create + write 4 KiB + fsync + close, in a directory of its own.
block = os.urandom(4096)
sync = os.path.join(d, "sync")
os.mkdir(sync)
snames = [os.path.join(sync, "s%06d" % i) for i in range(nsync)]
def create_fsync(p):
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, block)
    os.fsync(fd)
    os.close(fd)
timed(create_fsync, snames)
for p in snames:
    os.unlink(p)
os.rmdir(sync)

# write 4 KiB at the end of one file + fsync, each pair timed.
lat = []
fd = os.open(os.path.join(d, "fsync"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
for _ in range(nfsync):
    t = time.perf_counter_ns()
    os.write(fd, block)
    os.fsync(fd)
    lat.append(time.perf_counter_ns() - t)
os.close(fd)
os.unlink(os.path.join(d, "fsync"))
os.rmdir(meta)
lat.sort()
med = lat[len(lat) // 2] / 1e6
p99 = lat[min(len(lat) - 1, (len(lat) * 99) // 100)] / 1e6
print("%-22s %10.0f %10.0f %10.0f %14.0f %12.3f %12.3f" % (label, *rates, med, p99))
EOF
}

# rtt DIR: microseconds per getxattr of a missing name of a file in DIR.
rtt() {
	python3 - "$1" "$nrtt" <<'EOF'
import errno, os, sys, time
p = os.path.join(sys.argv[1], "rtt")
n = int(sys.argv[2])
open(p, "w").close()
t = time.perf_counter_ns()
for _ in range(n):
    try:
        os.getxattr(p, "user.meta-bench-none")
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
el = time.perf_counter_ns() - t
os.unlink(p)
print("%.2f" % (el / n / 1e3))
EOF
}

truncate -s 4G "$dir/lun"
"$vmfs" mkfs --label bench-meta --max-hosts 8 --inodes $((nfiles + nsync + 1024)) "$dir/lun" >/dev/null
bench_mount "$dir/lun"

echo "meta: $nfiles empty files in one directory; $nsync x (create, write 4 KiB, fsync, close);" \
	"$nfsync x (append 4 KiB, fsync); $VMFS_BIN" >&2
printf '%-22s %10s %10s %10s %14s %12s %12s\n' "" create/s stat/s unlink/s create+fsync/s \
	"fsync med ms" "fsync p99 ms"
ours=$(ops "$mp" "vmfs mount")
echo "$ours"
us=$(rtt "$mp")
awk -v us="$us" 'BEGIN {
	printf "FUSE floor: %.1f us per synchronous request (getxattr of a missing name):", us
	printf " at most %.0f creates/s (3 requests), %.0f unlinks/s (2)\n", 1e6 / (3 * us), 1e6 / (2 * us)
}'
[[ ${BENCH_NATIVE:-1} == 0 ]] && exit 0
truncate -s 4G "$dir/ext4.img"
loopdev=$(losetup --find --show "$dir/ext4.img")
mkfs.ext4 -q -F "$loopdev"
mkdir -p "$dir/ext4"
mount "$loopdev" "$dir/ext4"
ref=$(ops "$dir/ext4" "ext4 on a loop device")
echo "$ref"
# The ratio of each column (fsync latencies: ext4 / vmfs, so that higher
# is better everywhere).
awk -v a="$ours" -v b="$ref" 'BEGIN {
	na = split(a, x, "  +"); nb = split(b, y, "  +")
	printf "%-22s", "vmfs / ext4"
	for (i = 2; i <= 5; i++) printf " %*.2fx", (i == 5 ? 13 : 9), x[i] / y[i]
	for (i = 6; i <= 7; i++) printf " %11.2fx", y[i] / x[i]
	printf "\n"
}'
awk -v us="$us" -v b="$ref" 'BEGIN {
	split(b, y, "  +")
	printf "FUSE floor / ext4: at most %.2fx ext4'"'"'s creates/s, %.2fx its unlinks/s\n",
		1e6 / (3 * us) / y[2], 1e6 / (2 * us) / y[4]
}'
