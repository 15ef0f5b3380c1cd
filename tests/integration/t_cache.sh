#!/usr/bin/env bash
#
# t_cache: vmfsd's memory follows the cache budget (`vmfs mount
# --cache-size`) once the kernel lets go of its inodes.
#
#   - a budget below 1M, or not a size, is refused with a usage error;
#     mount.vmfs turns -o cache_size=16M into --cache-size 16M;
#   - `vmfs info MOUNTPOINT` shows the budget (text and --json);
#   - 30,000 empty files in 6 directories through a mount with
#     --cache-size 16M: while the kernel holds them, at most 7 KiB of RSS
#     each over the budget and the journal; the kernel drops its caches (echo 2, then echo 3 >
#     /proc/sys/vm/drop_caches), forgets every inode, and vmfsd's RSS
#     (VmRSS) falls under a bound: what it had right after the mount, plus
#     the budget, plus what the budget does not cover (the journal's images
#     and the commit's copy: 2 x journal size; a 1 MiB request buffer per
#     FUSE thread), plus 32 MiB for the allocator's arenas and
#     fragmentation (measured: 24-48 MB after the drop, 175 MB before
#     the budget and malloc_trim);
#   - every name is still there (readdir through dropped indexes) and
#     fsck -n is clean after the unmount;
#   - mounted again under a 4 GiB address-space limit (prlimit --as),
#     where the buffer pool cannot reserve its range: 2,000 more files,
#     every name there, fsck -n clean.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -w /proc/sys/vm/drop_caches ]] || skip "cannot write /proc/sys/vm/drop_caches (not root?)"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
NDIRS=6
PER_DIR=5000
BUDGET_MIB=16
JOURNAL_MIB=4
THREADS=4

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# cache FIELD: one field of the daemon's cache counters.
cache() {
	"$VMFS" info --json "$MP" | python3 -c '
import json, sys
print(json.load(sys.stdin)["vmfsd"]["cache"][sys.argv[1]])' "$1"
}

step "a budget under 1M or not a size is refused; mount.vmfs passes cache_size="
make_lun "$LUN" 8G
t_mkfs "$LUN" --max-hosts 2 --journal-size ${JOURNAL_MIB}M --inodes 40000
mkdir -p "$MP"
expect_fail 2 "--cache-size 100K: must be a size of at least 1M" \
	"$VMFS" mount --state-dir "$T_STATE" --cache-size 100K "$LUN" "$MP"
expect_fail 2 "--cache-size lots: must be a size" \
	"$VMFS" mount --state-dir "$T_STATE" --cache-size lots "$LUN" "$MP"
mountpoint -q "$MP" && fail "a refused mount left $MP mounted"
ln -s "$VMFS" "$T_DIR/mount.vmfs"
"$T_DIR/mount.vmfs" "$LUN" "$MP" -f -v -o cache_size=${BUDGET_MIB}M,state-dir="$T_STATE" \
	2>"$T_DIR/helper.err" || fail "mount.vmfs -f -o cache_size=: $(cat "$T_DIR/helper.err")"
grep -q -- "--cache-size ${BUDGET_MIB}M" "$T_DIR/helper.err" ||
	fail "mount.vmfs -o cache_size=${BUDGET_MIB}M does not pass --cache-size: $(cat "$T_DIR/helper.err")"

step "vmfs info shows the budget"
t_mount "$LUN" "$MP" --cache-size ${BUDGET_MIB}M --threads $THREADS
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
rss0=$(rss_kib "$pid")
"$VMFS" info "$MP" >"$T_DIR/info" || fail "vmfs info $MP failed"
grep -q "^cache  *budget ${BUDGET_MIB} MiB" "$T_DIR/info" ||
	fail "vmfs info does not show the ${BUDGET_MIB} MiB budget: $(grep -i cache "$T_DIR/info")"
expect_eq "cache budget_bytes" "$(cache budget_bytes)" $((BUDGET_MIB << 20))

step "create $((NDIRS * PER_DIR)) files in $NDIRS directories"
python3 - "$MP" $NDIRS $PER_DIR <<'EOF'
import os, sys
mp, ndirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(ndirs):
    p = os.path.join(mp, "d%d" % d)
    os.mkdir(p)
    for i in range(per):
        os.close(os.open(os.path.join(p, "f%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
rss_full=$(rss_kib "$pid")
t_log "RSS after the mount ${rss0} KiB, after the creates ${rss_full} KiB"
# While the kernel holds every inode: at most 7 KiB each (a 4 KiB image
# at one page from the buffer pool, its struct and the kernel-cache
# records; 8-9 KiB each with posix_memalign's images), over the budget
# and the journal's images.
held=$((NDIRS * PER_DIR + NDIRS))
held_bound=$((rss0 + held * 7 + (BUDGET_MIB << 10) + 2 * (JOURNAL_MIB << 10)))
((rss_full <= held_bound)) ||
	fail "vmfsd RSS ${rss_full} KiB with $held inodes held exceeds ${held_bound} KiB (7 KiB each over the mount's ${rss0} KiB, the budget and the journal)"

# Budget + what vmfsd had at mount + journal images and the commit's
# copy + a request buffer per FUSE thread + allocator slack, in KiB.
bound=$(( (BUDGET_MIB << 10) + rss0 + 2 * (JOURNAL_MIB << 10) +
	  THREADS * 1028 + (32 << 10) ))

for level in 2 3; do
	step "echo $level > drop_caches: the kernel forgets, RSS falls under ${bound} KiB"
	sync
	echo $level >/proc/sys/vm/drop_caches
	# Forgets reach vmfsd asynchronously: wait (10 s at most) until it
	# holds no more than the root and a few stragglers.
	for ((w = 0; w < 100; w++)); do
		(( $(cache inodes) <= 8 )) && break
		sleep 0.1
	done
	inodes=$(cache inodes)
	(( inodes <= 8 )) ||
		fail "vmfsd still caches $inodes inodes 10 s after drop_caches"
	# The freeing thread hands pages back (malloc_trim) after it counted
	# the inode gone: give the last trim a moment to end.
	for ((w = 0; w < 50; w++)); do
		rss=$(rss_kib "$pid")
		(( rss <= bound )) && break
		sleep 0.1
	done
	t_log "RSS after drop_caches $level: ${rss} KiB (bound ${bound} KiB; $inodes inodes cached)"
	(( rss <= bound )) ||
		fail "vmfsd RSS ${rss} KiB after drop_caches $level exceeds ${bound} KiB (mount ${rss0} KiB + budget ${BUDGET_MIB} MiB + journal 2x${JOURNAL_MIB} MiB + ${THREADS} FUSE buffers + 32 MiB); $("$VMFS" info "$MP" | grep '^cache')"
done

step "every name is still there"
for ((d = 0; d < NDIRS; d++)); do
	n=$(find "$MP/d$d" -mindepth 1 | wc -l)
	expect_eq "entries in d$d" "$n" $PER_DIR
done
"$VMFS" info "$MP" | grep "^cache" >&2

step "fsck -n is clean after the unmount"
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the cache test: $(cat "$T_DIR/fsck.out")"

# The buffer pool reserves 64 GiB of address space (lun/bufpool.c); under
# a limit that refuses it, 4 KiB blocks come from the heap and everything
# works as before (docs/OPERATIONS.md, Memory).
step "under a 4 GiB address-space limit: no pool, the volume works the same"
T_MOUNT_WRAP=(prlimit --as=$((4 << 30)) --)
t_mount "$LUN" "$MP" --threads $THREADS
T_MOUNT_WRAP=()
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
vsz=$(awk '/^VmSize:/ { print $2 }' "/proc/$pid/status")
((vsz < (4 << 20))) || fail "vmfsd's VmSize ${vsz} KiB under a 4 GiB limit"
mkdir "$MP/limited"
for ((i = 0; i < 2000; i++)); do
	echo "$i" >"$MP/limited/f$i"
done
expect_eq "entries in limited" "$(find "$MP/limited" -mindepth 1 | wc -l)" 2000
expect_eq "entries in d0" "$(find "$MP/d0" -mindepth 1 | wc -l)" $PER_DIR
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the mount under the limit: $(cat "$T_DIR/fsck.out")"
