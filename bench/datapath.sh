#!/usr/bin/env bash
#
# bench/datapath.sh: the data path through a mount against the raw LUN.
#
# The same four fio jobs (1 MiB sequential read and write, 4 KiB random
# read and write; O_DIRECT, libaio, queue depth 16, time based) run
# against (a) a fully allocated file beside the LUN file, on the same
# host file system, and (b) an eagerzeroedthick disk made with `vmfs disk
# create` on a volume on that LUN, mounted.  Both targets are written
# through once first, so no job reads unwritten extents.  Prints a table;
# asserts nothing about speed.
#
#   VMFS_BIN        vmfs and vmfsd (default: <repo>/bin)
#   BENCH_DIR       where the LUN and the raw file go (default /tmp)
#   BENCH_SIZE      size of each target (default 2G)
#   BENCH_RUNTIME   seconds per job (default 10)

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VMFS_BIN=${VMFS_BIN:-$root/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
vmfs=$VMFS_BIN/vmfs
size=${BENCH_SIZE:-2G}
runtime=${BENCH_RUNTIME:-10}
size_bytes=$(numfmt --from=iec "$size")

for tool in fio python3 numfmt; do
	command -v "$tool" >/dev/null || { echo "datapath.sh: $tool is needed" >&2; exit 1; }
done
[[ -x $vmfs ]] || { echo "datapath.sh: no $vmfs; run 'make' or set VMFS_BIN" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_setup datapath

echo "datapath: $size targets, $runtime s per job, in $dir" >&2
# LUN: the disk plus the volume's own areas (64 hosts' journals, metadata).
truncate -s $((size_bytes + (2 << 30))) "$dir/lun"
"$vmfs" mkfs --label bench "$dir/lun" >/dev/null
bench_mount "$dir/lun"
"$vmfs" disk create --size "$size" --type eagerzeroedthick "$mp/bench.vmdk"

echo "writing both targets through once" >&2
dd if=/dev/zero of="$dir/raw.img" bs=1M count=$((size_bytes >> 20)) oflag=direct status=none
dd if=/dev/zero of="$mp/bench.vmdk" bs=1M count=$((size_bytes >> 20)) oflag=direct conv=notrunc status=none

# job NAME RW BS FILE: prints MiB/s for 1M jobs, IOPS for 4K jobs.
job() {
	local name=$1 rw=$2 bs=$3 file=$4
	fio --name="$name" --filename="$file" --size="$size" --rw="$rw" --bs="$bs" \
		--direct=1 --ioengine=libaio --iodepth=16 --time_based \
		--runtime="$runtime" --ramp_time=1 --randrepeat=0 \
		--output-format=json | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if sys.argv[1] in ("read", "randread") else j["write"]
if sys.argv[2] == "1M":
    print("%.0f" % (d["bw_bytes"] / 1048576.0))
else:
    print("%.0f" % d["iops"])' "$rw" "$bs"
}

printf '%-18s %8s %-5s %8s %-5s %9s\n' job raw '' mount '' mount/raw
for spec in "seq-read read 1M MiB/s" "seq-write write 1M MiB/s" \
	"rand-read randread 4k IOPS" "rand-write randwrite 4k IOPS"; do
	read -r name rw bs unit <<<"$spec"
	raw=$(job "$name" "$rw" "$bs" "$dir/raw.img")
	mnt=$(job "$name" "$rw" "$bs" "$mp/bench.vmdk")
	ratio=$(python3 -c 'import sys; r, m = map(float, sys.argv[1:]); print("%.2f" % (m / r if r else 0))' "$raw" "$mnt")
	printf '%-18s %8s %-5s %8s %-5s %9s\n' "$name (QD16)" "$raw" "$unit" "$mnt" "$unit" "$ratio"
done
