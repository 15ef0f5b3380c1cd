#!/usr/bin/env bash
#
# bench/fsck.sh: how fsck scales with the number of files.  For each size
# N, make a volume with N files (bench/populate writes them through the
# volume engine directly; FUSE would take hours for a million), then time
# a read-only check, 'vmfs fsck -n', and print its wall time, inodes
# checked per second and peak RSS (from /usr/bin/time -v).  Prints
# figures; asserts nothing about speed.
#
#   FSCK_BENCH_SIZES  file counts (default "10000 100000 1000000"; the
#                     million takes 6 to 11 minutes to populate on a
#                     2-CPU VM with a virtio disk and ~20 s to check: drop
#                     it with FSCK_BENCH_SIZES="10000 100000")
#   FSCK_BENCH_DIRS   directories the files are spread over (default 1000)
#   FSCK_BENCH_CHECK  the vmfs command timed (default "fsck -n"); e.g.
#                     "info" to try the script where fsck is not built
#   VMFS_BIN          vmfs (default: <repo>/bin)
#   VMFS_POPULATE     the populate tool (default: <repo>/build/bench/populate;
#                     'make build/bench/populate' builds it)
#   BENCH_DIR         where the LUN files go (default /tmp; O_DIRECT needed)
#
# Volumes: mkfs --max-hosts 4 --journal-size 1M --inodes N+DIRS+1024 (the
# root, lost+found and the never-used inode 0 need slots too) on a sparse
# file of 2 GiB + 32 KiB per file, which leaves room in the small-block
# area for every directory's chunks.  Every 10th file holds a few hundred
# bytes inline, every 500th 8 KiB in a small block.  A LUN takes about
# 4.5 KiB of disk per file, and is removed after its size is measured.

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VMFS_BIN=${VMFS_BIN:-$root/bin}
case $VMFS_BIN in /*) ;; *) VMFS_BIN=$PWD/$VMFS_BIN ;; esac
vmfs=$VMFS_BIN/vmfs
populate=${VMFS_POPULATE:-$root/build/bench/populate}
sizes=${FSCK_BENCH_SIZES:-10000 100000 1000000}
ndirs=${FSCK_BENCH_DIRS:-1000}
read -r -a check <<<"${FSCK_BENCH_CHECK:-fsck -n}"
timev=/usr/bin/time

[[ -x $vmfs ]] || { echo "fsck.sh: no $vmfs; run 'make' or set VMFS_BIN" >&2; exit 1; }
[[ -x $populate ]] || { echo "fsck.sh: no $populate; run 'make build/bench/populate' or set VMFS_POPULATE" >&2; exit 1; }
[[ -x $timev ]] || { echo "fsck.sh: needs GNU time ($timev): apt-get install time" >&2; exit 1; }

dir=$(mktemp -d "${BENCH_DIR:-/tmp}/vmfs-bench-fsck.XXXXXX")
cleanup() {
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# tv KEY FILE: a field of /usr/bin/time -v's report.
tv() {
	sed -n "s/^[[:space:]]*$1: //p" "$2" | tail -n 1
}

# secs "h:mm:ss.cc" or "m:ss.cc" -> seconds.
secs() {
	awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$1"
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -r)"
echo "LUN dir: $dir ($(findmnt -n -o FSTYPE,SOURCE -T "$dir" 2>/dev/null || echo '?'))"
echo "check:   vmfs ${check[*]}"
echo
printf '%9s %9s %10s %9s %8s %7s %11s %10s %8s %5s\n' files inodes populate create/s pop_rss disk "${check[0]}_s" inodes/s rss_mb exit
for n in $sizes; do
	lun=$dir/lun-$n.img
	inodes=$((n + ndirs + 1024))
	in_use=$((n + ndirs + 2))	# files, dirs, root, lost+found
	truncate -s $((2 * 1024 * 1024 * 1024 + n * 32768)) "$lun"
	"$vmfs" mkfs --inodes "$inodes" --max-hosts 4 --journal-size 1M \
		"$lun" >"$dir/mkfs.log" 2>&1 ||
		{ cat "$dir/mkfs.log" >&2; exit 1; }

	"$timev" -v -o "$dir/pop.time" "$populate" -d "$ndirs" "$lun" "$n" \
		>"$dir/pop.out" 2>"$dir/pop.err" ||
		{ cat "$dir/pop.err" >&2; exit 1; }
	pop_s=$(secs "$(tv 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$dir/pop.time")")
	pop_rss=$(tv 'Maximum resident set size (kbytes)' "$dir/pop.time")
	rate=$(sed -n 's/.* \([0-9]*\) files\/s$/\1/p' "$dir/pop.out")

	# Start the check from a cold page cache for the LUN file, as after a
	# reboot; the LUN is read with O_DIRECT anyway.
	sync "$lun" 2>/dev/null || sync
	rc=0
	"$timev" -v -o "$dir/check.time" "$vmfs" "${check[@]}" "$lun" \
		>"$dir/check.out" 2>&1 || rc=$?
	chk_s=$(secs "$(tv 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$dir/check.time")")
	chk_rss=$(tv 'Maximum resident set size (kbytes)' "$dir/check.time")
	# fsck's summary says how many inodes it checked; else count ours.
	checked=$(sed -n 's/.* \([0-9][0-9]*\) inodes, .*/\1/p' "$dir/check.out" | tail -n 1)
	checked=${checked:-$in_use}
	ips=$(awk -v n="$checked" -v s="$chk_s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	printf '%9s %9s %9ss %9s %7sM %7s %11s %10s %8s %5s\n' "$n" "$checked" \
		"$pop_s" "${rate:-?}" "$((pop_rss / 1024))" \
		"$(du -h "$lun" | cut -f1)" "$chk_s" "$ips" \
		"$((chk_rss / 1024))" "$rc"
	if ((rc != 0)); then
		echo "  vmfs ${check[*]} exited $rc; its last lines:" >&2
		tail -n 5 "$dir/check.out" | sed 's/^/  | /' >&2
	fi
	rm -f "$lun"
done
echo
echo "inodes = inodes checked (fsck's summary; else files + dirs + root + lost+found);"
echo "disk = the LUN's allocated bytes;"
echo "inodes/s = inodes / check time; rss = peak resident set size;"
echo "exit = the check's exit status (fsck: 0 clean)"
