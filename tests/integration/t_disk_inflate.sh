#!/usr/bin/env bash
# t_disk_inflate: vmfs disk inflate (thin -> eagerzeroedthick, like
# vmkfstools -j).
#  - the volume's free blocks first hold 0xab (files written and
#    deleted), so a block only allocated (to-be-zeroed) still holds 0xab
#    on the LUN while an eagerly zeroed one does not;
#  - a thin disk with data at four places (one a written block of zeros,
#    one at its last bytes) inflates: byte for byte the same data, fully
#    allocated, type eagerzeroedthick, and the 0xab bytes on the raw LUN
#    fell by at least the never-written part of the disk (zeroed there);
#  - a second inflate says it is eagerzeroedthick already; a disk open
#    and locked on this host (a VM's QEMU takes such locks), a file off
#    the volume and a missing file are refused with a message;
#  - fsck -n is clean.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
DISK=96M
DISK_BYTES=$((96 << 20))

# count_ab FILE: how many 0xab bytes FILE holds.
count_ab() {
	python3 - "$1" <<'EOF'
import sys
n = 0
with open(sys.argv[1], "rb", buffering=0) as f:
    while True:
        b = f.read(8 << 20)
        if not b:
            break
        n += b.count(0xab)
print(n)
EOF
}

step "mkfs, mount; the free space holds 0xab"
make_lun "$LUN" 256M
t_mkfs "$LUN" --max-hosts 2 --journal-size 4M
t_mount "$LUN" "$MP"
for ((i = 0; ; i++)); do
	head -c $((16 << 20)) /dev/zero | tr '\0' '\253' >"$MP/fill$i" 2>/dev/null || break
done
[[ $i -ge 8 ]] || fail "only $i fill files of 16 MiB fit on the volume"
rm -f "$MP"/fill*
t_umount "$MP"
ab0=$(count_ab "$LUN")
[[ $ab0 -ge $((DISK_BYTES + (32 << 20))) ]] ||
	fail "only $ab0 bytes of 0xab on the LUN after the fill"
t_mount "$LUN" "$MP"

step "a thin disk with data at four places"
"$VMFS" disk create --size "$DISK" --type thin "$MP/d.img" >/dev/null ||
	fail "vmfs disk create failed"
truncate -s "$DISK" "$T_DIR/want.raw"
# write OFFSET LEN BYTE(octal): the same bytes into the disk and want.raw
write() {
	local f
	for f in "$MP/d.img" "$T_DIR/want.raw"; do
		head -c "$2" /dev/zero | tr '\0' "\\$3" |
			dd of="$f" bs=64k seek="$1" oflag=seek_bytes conv=notrunc status=none ||
			fail "writing $2 bytes at $1 into $f failed"
	done
}
write 0 65536 132                       # 0x5a
write $((5 << 20)) $((1 << 20)) 245     # 0xa5
write $((8 << 20)) $((1 << 20)) 000     # a written block of zeros
write $((DISK_BYTES - 65536)) 65536 021 # 0x11, the last bytes
cmp "$T_DIR/want.raw" "$MP/d.img" || fail "the thin disk does not hold what was written"
thin_alloc=$(alloc_bytes "$MP/d.img")
[[ $thin_alloc -lt $((DISK_BYTES / 2)) ]] ||
	fail "the thin disk has $thin_alloc bytes allocated before inflate"

step "inflate: data kept, all allocated, eagerzeroedthick"
"$VMFS" disk inflate "$MP/d.img" >"$T_DIR/inflate.out" 2>&1 ||
	fail "vmfs disk inflate failed: $(cat "$T_DIR/inflate.out")"
grep -q "inflated to eagerzeroedthick" "$T_DIR/inflate.out" ||
	fail "unexpected output: $(cat "$T_DIR/inflate.out")"
cmp "$T_DIR/want.raw" "$MP/d.img" || fail "inflate changed the disk's data"
[[ $(alloc_bytes "$MP/d.img") -ge $DISK_BYTES ]] ||
	fail "only $(alloc_bytes "$MP/d.img") of $DISK_BYTES bytes allocated after inflate"
"$VMFS" disk info "$MP/d.img" | grep -q '^type *eagerzeroedthick' ||
	fail "disk info after inflate: $("$VMFS" disk info "$MP/d.img")"

step "the never-written blocks were zeroed on the LUN"
t_umount "$MP"
ab1=$(count_ab "$LUN")
# The disk's blocks that were never written: at least DISK - thin_alloc,
# less what the volume may have allocated elsewhere from never-used space.
t_log "0xab bytes on the LUN: $ab0 before, $ab1 after (thin disk had $thin_alloc allocated)"
[[ $((ab0 - ab1)) -ge $((DISK_BYTES - thin_alloc - (8 << 20))) ]] ||
	fail "inflate left 0xab on the LUN: $ab0 -> $ab1 bytes (want a fall of about $((DISK_BYTES - thin_alloc)))"
t_mount "$LUN" "$MP"
cmp "$T_DIR/want.raw" "$MP/d.img" || fail "the data changed across a remount"

step "again; refusals"
"$VMFS" disk inflate "$MP/d.img" | grep -q "eagerzeroedthick already" ||
	fail "a second inflate did not say it is eagerzeroedthick already"
"$VMFS" disk create --size 8M --type thin "$MP/busy.img" >/dev/null ||
	fail "vmfs disk create busy.img failed"
rm -f "$T_DIR/locked"
python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.lockf(fd, fcntl.LOCK_SH)
open(sys.argv[2], "w").close()
time.sleep(60)' "$MP/busy.img" "$T_DIR/locked" &
holder=$!
T_PIDS+=("$holder")
for ((i = 0; i < 100; i++)); do
	[[ -e $T_DIR/locked ]] && break
	sleep 0.1
done
[[ -e $T_DIR/locked ]] || fail "the lock holder did not start"
expect_fail 1 "in use on this host.*stop it first" "$VMFS" disk inflate "$MP/busy.img"
kill "$holder"
wait "$holder" 2>/dev/null || true
"$VMFS" disk info "$MP/busy.img" | grep -q '^type *thin' ||
	fail "the refused inflate changed busy.img's type"
"$VMFS" disk inflate "$MP/busy.img" >/dev/null || fail "inflate of busy.img once free failed"
truncate -s 1M "$T_DIR/off.img"
expect_fail 1 "not on a mounted vmfs volume" "$VMFS" disk inflate "$T_DIR/off.img"
expect_fail 1 "No such file" "$VMFS" disk inflate "$MP/gone.img"
expect_fail 2 "PATH" "$VMFS" disk inflate

step "fsck -n is clean"
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after inflate: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
