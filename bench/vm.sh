#!/usr/bin/env bash
#
# bench/vm.sh (make bench-vm): what a VM sees of the datastore.
#
# 1. Guest disk I/O through QEMU's own block layer: `qemu-img bench`
#    (raw, cache=none, aio=native: what vmfsd gives a VM's disks) on
#    (a) a raw image file beside the LUN file, on the same host file
#    system, and (b) a thin disk made by `vmfs disk create` on a volume
#    on that LUN, mounted -- same sizes, same run.  Jobs: the first
#    write of the empty image (allocating: a new thin disk's cost), a
#    rewrite, a read, 1 MiB requests at queue depth 16, and 4 KiB writes
#    at queue depth 1.  Prints mount/raw ratios.
# 2. Inside the guest: the test guest's own dd (O_DIRECT, 1 MiB blocks)
#    to and from its second disk, eagerzeroedthick on the datastore vs a
#    raw file beside the LUN in a plain QEMU, same run (guest/init's
#    vmfs_bench=MIB; the times come back on the serial console).
# 3. Boot: the time from `vmfs vm start` to the test guest's (make guest)
#    first counter write on its disk, seen on the datastore with O_DIRECT
#    reads every 20 ms; BENCH_STARTS starts, each after a stop.
#
# Asserts nothing about speed.
#
#   VMFS_BIN        vmfs and vmfsd (default: <repo>/bin)
#   VMFS_GUEST      the test guest's directory (default: <repo>/build/guest)
#   BENCH_DIR       where the LUN and the raw file go (default /tmp)
#   BENCH_SIZE      size of each image (default 512M)
#   BENCH_STARTS    VM starts to time (default 3)
#   BENCH_GUEST_MIB MiB the guest writes and reads with dd (default 256)
#   BENCH_ACCEL     the VM's accel: tcg (default), kvm or auto

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VMFS_BIN=${VMFS_BIN:-$root/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
GUEST=${VMFS_GUEST:-$root/build/guest}
vmfs=$VMFS_BIN/vmfs
size=${BENCH_SIZE:-512M}
starts=${BENCH_STARTS:-3}
gmib=${BENCH_GUEST_MIB:-256}
accel=${BENCH_ACCEL:-tcg}
size_bytes=$(numfmt --from=iec "$size")
mib=$((size_bytes >> 20))

for tool in qemu-img qemu-system-x86_64 python3 numfmt; do
	command -v "$tool" >/dev/null || { echo "vm.sh: $tool is needed (make deps)" >&2; exit 1; }
done
[[ -x $vmfs ]] || { echo "vm.sh: no $vmfs; run 'make' or set VMFS_BIN" >&2; exit 1; }
[[ -r $GUEST/vmlinuz && -r $GUEST/initrd.img ]] ||
	{ echo "vm.sh: no test guest in $GUEST; run 'make guest' or set VMFS_GUEST" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_setup vm
vmdir=
vm() { VMFS_STATE_DIR=$state "$vmfs" vm "$@"; }
# A VM still running at the end is killed before the unmount.
vm_bench_cleanup() {
	[[ -n $vmdir ]] && vm stop --force "$vmdir" >/dev/null 2>&1
	bench_cleanup
}
trap vm_bench_cleanup EXIT

echo "vm: $size images, $starts VM starts ($accel), in $dir" >&2
truncate -s $((size_bytes + (2 << 30))) "$dir/lun"
"$vmfs" mkfs --label bench "$dir/lun" >/dev/null
bench_mount "$dir/lun"

# bench FILE ARGS...: seconds of one qemu-img bench run.
bench() {
	local f=$1
	shift
	qemu-img bench -f raw -t none -i native "$@" "$f" |
		sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p'
}

# row NAME UNIT AMOUNT ARGS...: the same job on the raw file and the
# mount's disk; AMOUNT (MiB or requests) over the time gives the rate.
row() {
	local name=$1 unit=$2 amount=$3 traw tmnt
	shift 3
	traw=$(bench "$dir/raw.img" "$@")
	tmnt=$(bench "$mp/vms/disk.img" "$@")
	python3 - "$name" "$unit" "$amount" "$traw" "$tmnt" <<'EOF'
import sys
name, unit, amount, traw, tmnt = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
r, m = amount / traw, amount / tmnt
print("%-38s %9.0f %-5s %9.0f %-5s %9.2f" % (name, r, unit, m, unit, m / r))
EOF
}

mkdir "$mp/vms"
truncate -s "$size" "$dir/raw.img"
"$vmfs" disk create --size "$size" --type thin "$mp/vms/disk.img" >/dev/null
echo
echo "== guest disk I/O: qemu-img bench (raw, cache=none, aio=native), $size"
printf '%-38s %9s %-5s %9s %-5s %9s\n' job raw '' mount '' mount/raw
row "1 MiB write QD16, first (allocating)" MiB/s "$mib" -w --pattern=90 -s 1M -c "$mib" -d 16
row "1 MiB write QD16, rewrite" MiB/s "$mib" -w --pattern=90 -s 1M -c "$mib" -d 16
row "1 MiB read QD16" MiB/s "$mib" -s 1M -c "$mib" -d 16
n4k=$((size_bytes < (64 << 20) ? size_bytes / 4096 : 16384))
row "4 KiB write QD1 (rewrite)" IOPS "$n4k" -w --pattern=90 -s 4k -S 4k -c "$n4k" -d 1
rm -f "$dir/raw.img" "$mp/vms/disk.img"

echo
echo "== inside the guest: dd with O_DIRECT, 1 MiB blocks, on its second disk ($gmib MiB)"
# The test guest's vmfs_bench=MIB (guest/init): dd to and from /dev/vdb
# before its counter starts; the times come back on its console.  The
# datastore: a VM whose second disk is eagerzeroedthick on the mount; the
# baseline: the same guest in a plain QEMU whose second disk is a raw file
# beside the LUN, written once beforehand (allocated too).
gbench_line() {
	local f=$1 k
	for ((k = 0; k < 3000; k++)); do
		grep -a -m1 -o 'vmfs-guest-bench write [0-9]* MiB [0-9]* cs read [0-9]* MiB [0-9]* cs' "$f" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "vm.sh: no vmfs-guest-bench line in $f" >&2
	tail -n 5 "$f" >&2
	return 1
}
vmdir=$mp/vms/g1
vm create "$vmdir" --memory 256M --cpus 1 --disk 16M:thin \
	--disk "${gmib}M:eagerzeroedthick" --accel "$accel" \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
	--cmdline "console=ttyS0 quiet panic=-1 vmfs_bench=$gmib" >/dev/null
vm start "$vmdir" >/dev/null
gmnt=$(gbench_line "$vmdir/console.log")
vm stop --force "$vmdir" >/dev/null
vm destroy "$vmdir" >/dev/null
vmdir=
truncate -s 16M "$dir/g0.img"
dd if=/dev/zero of="$dir/g1.img" bs=1M count="$gmib" status=none
qemu-system-x86_64 -machine "q35,accel=$accel" -m 256 -smp 1 -display none \
	-nodefaults -no-user-config \
	-chardev "file,id=c0,path=$dir/g-console.log" -serial chardev:c0 \
	-kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.img" \
	-append "console=ttyS0 quiet panic=-1 vmfs_bench=$gmib" \
	-drive "file=$dir/g0.img,format=raw,if=virtio,cache=none,aio=native" \
	-drive "file=$dir/g1.img,format=raw,if=virtio,cache=none,aio=native" \
	-nic none >/dev/null 2>&1 &
gqemu=$!
graw=$(gbench_line "$dir/g-console.log")
kill "$gqemu" 2>/dev/null
wait "$gqemu" 2>/dev/null || true
rm -f "$dir/g0.img" "$dir/g1.img"
python3 - "$gmnt" "$graw" <<'EOF'
import re, sys
def rates(line):
    m = re.search(r"write (\d+) MiB (\d+) cs read (\d+) MiB (\d+) cs", line)
    n, w, r = int(m.group(1)), max(int(m.group(2)), 1), max(int(m.group(4)), 1)
    return n * 100.0 / w, n * 100.0 / r
mw, mr = rates(sys.argv[1])
rw, rr = rates(sys.argv[2])
print("%-38s %9s %-5s %9s %-5s %9s" % ("job", "raw", "", "mount", "", "mount/raw"))
print("%-38s %9.0f %-5s %9.0f %-5s %9.2f" % ("dd write 1 MiB O_DIRECT (guest)", rw, "MiB/s", mw, "MiB/s", mw / rw))
print("%-38s %9.0f %-5s %9.0f %-5s %9.2f" % ("dd read 1 MiB O_DIRECT (guest)", rr, "MiB/s", mr, "MiB/s", mr / rr))
EOF

echo
echo "== boot: vmfs vm start -> the guest's first counter write on its disk ($accel)"
vmdir=$mp/vms/b1
vm create "$vmdir" --memory 256M --cpus 1 --disk 64M:thin --accel "$accel" \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null
# counter: the guest's counter on its disk (O_DIRECT read), or nothing.
counter() {
	dd if="$vmdir/disk0.img" bs=512 count=1 iflag=direct 2>/dev/null | head -c 64 |
		tr -d '\0' | sed -n 's/^vmfs-guest-counter \([0-9]*\)$/\1/p' | head -n 1
}
times=()
for ((i = 1; i <= starts; i++)); do
	before=$(counter)
	before=${before:-0}
	t0=$(date +%s%N)
	vm start "$vmdir" >/dev/null
	t1=$(date +%s%N)
	for ((j = 0; j < 6000; j++)); do
		c=$(counter)
		[[ -n $c && $c -gt $before ]] && break
		sleep 0.02
	done
	t2=$(date +%s%N)
	[[ -n $c && $c -gt $before ]] ||
		{ echo "vm.sh: the guest wrote no counter in 120 s; console:" >&2
		  tail -n 20 "$vmdir/console.log" >&2; exit 1; }
	printf 'start %d: vmfs vm start returned after %5d ms, first counter write (%s) at %5d ms\n' \
		"$i" $(((t1 - t0) / 1000000)) "$c" $(((t2 - t0) / 1000000))
	times+=($(((t2 - t0) / 1000000)))
	vm stop "$vmdir" >/dev/null
done
python3 -c 'import sys, statistics; v = list(map(int, sys.argv[1:])); print("median %d ms (min %d, max %d) over %d starts" % (statistics.median(v), min(v), max(v), len(v)))' "${times[@]}"
vm destroy "$vmdir" >/dev/null
vmdir=
echo
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
