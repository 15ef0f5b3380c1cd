#!/usr/bin/env bash
#
# t_disk_types: `vmfs disk create` of each type (allocation, zeros, the
# type xattr, refusals, paths that are not on a vmfs volume), then the
# security property of every type: data of a deleted file is never
# readable through a new file, whatever way the new file gets its blocks
# (thin first write, zeroedthick, eager zeroing, truncate-grow, punch and
# partial rewrite, inline data).
# VMFS_T_DISK_SIZE sets the size of the disks that are read back whole.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
SIZE=${VMFS_T_DISK_SIZE:-1G}
SIZE_BYTES=$(numfmt --from=iec "$SIZE")

# check_zeros_but FILE [OFF LEN]: FILE reads as zeros except [OFF, OFF+LEN),
# which must hold 0x5a bytes.
check_zeros_but() {
	python3 - "$@" <<'EOF' || fail "$1 does not read as expected"
import sys
path = sys.argv[1]
off = int(sys.argv[2]) if len(sys.argv) > 2 else -1
ln = int(sys.argv[3]) if len(sys.argv) > 3 else 0
pos, chunk = 0, 8 << 20
with open(path, "rb", buffering=0) as f:
    while True:
        b = f.read(chunk)
        if not b:
            break
        for i in range(0, len(b), 4096):
            blk = b[i:i + 4096]
            lo, hi = pos + i, pos + i + len(blk)
            if off >= 0 and lo < off + ln and hi > off:
                s, e = max(off, lo) - lo, min(off + ln, hi) - lo
                ok = (blk[:s].count(0) == s and blk[s:e].count(0x5a) == e - s
                      and blk[e:].count(0) == len(blk) - e)
            else:
                ok = blk.count(0) == len(blk)
            if not ok:
                sys.exit("%s: unexpected bytes in [%d, %d)" % (path, lo, hi))
        pos += len(b)
EOF
}

# no_ab DIR: not one 0xab byte (the deleted files' pattern) in any file.
no_ab() {
	python3 - "$1" <<'EOF' || fail "deleted data became readable (see above)"
import os, sys
bad = nfiles = 0
for root, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        nfiles += 1
        pos = 0
        with open(path, "rb", buffering=0) as f:
            while True:
                b = f.read(8 << 20)
                if not b:
                    break
                i = b.find(b"\xab")
                if i >= 0:
                    print("%s: byte 0xab at offset %d" % (path, pos + i), file=sys.stderr)
                    bad = 1
                    break
                pos += len(b)
if nfiles < 100:
    sys.exit("only %d files to check" % nfiles)
sys.exit(bad)
EOF
}

# pattern BYTE COUNT: COUNT bytes of value BYTE (hex) on stdout.
pattern() {
	head -c "$2" /dev/zero | tr '\0' "\\$(printf '%03o' "$1")"
}

step "mkfs and mount"
make_lun "$LUN" 8G
t_mkfs "$LUN"
t_mount "$LUN" "$MP"

step "thin"
"$VMFS" disk create --size 3G --type thin "$MP/thin.vmdk"
expect_eq "thin size" "$(stat -c %s "$MP/thin.vmdk")" $((3 << 30))
(($(alloc_bytes "$MP/thin.vmdk") < 1 << 20)) ||
	fail "a thin disk has $(alloc_bytes "$MP/thin.vmdk") bytes allocated"
expect_eq "thin xattr" "$(getfattr --absolute-names --only-values -n trusted.vmfs.disk_type "$MP/thin.vmdk")" thin
"$VMFS" disk info "$MP/thin.vmdk" | grep -qE '^type +thin$' || fail "vmfs disk info does not say thin"

step "zeroedthick and eagerzeroedthick"
for type in zeroedthick eagerzeroedthick; do
	f=$MP/$type.vmdk
	"$VMFS" disk create --size "$SIZE" --type "$type" "$f"
	expect_eq "$type size" "$(stat -c %s "$f")" "$SIZE_BYTES"
	(($(alloc_bytes "$f") >= SIZE_BYTES)) ||
		fail "$type disk of $SIZE_BYTES bytes has $(alloc_bytes "$f") allocated"
	expect_eq "$type xattr" "$(getfattr --absolute-names --only-values -n trusted.vmfs.disk_type "$f")" "$type"
	"$VMFS" disk info "$f" | grep -qE "^type +$type\$" || fail "vmfs disk info does not say $type"
done

step "all three read as zeros"
truncate -s "$SIZE_BYTES" "$MP/thin-small.vmdk"
for f in thin-small zeroedthick eagerzeroedthick; do
	cmp -n "$SIZE_BYTES" "$MP/$f.vmdk" /dev/zero || fail "$f.vmdk does not read as zeros"
done

step "a write in the middle, read back"
off=$((SIZE_BYTES / 2 + 12345))
for f in thin-small zeroedthick eagerzeroedthick; do
	pattern 0x5a 10000 | dd of="$MP/$f.vmdk" bs=10000 seek="$off" oflag=seek_bytes conv=notrunc,fsync status=none
	check_zeros_but "$MP/$f.vmdk" "$off" 10000
done
before=$(alloc_bytes "$MP/thin-small.vmdk")
(((before > 0) && (before <= 4 << 20))) || fail "thin disk after one 10 KB write has $before bytes allocated"

step "refusals: existing path, bad type, no space, not on a vmfs volume"
expect_fail 1 "already exists" "$VMFS" disk create --size 1M --type thin "$MP/thin.vmdk"
# $T_DIR is on the host's own file system, not on the volume.
for type in thin zeroedthick; do
	expect_fail 1 "$T_DIR/off.vmdk is not on a mounted vmfs volume .*vmfs mount" \
		"$VMFS" disk create --size 1M --type "$type" "$T_DIR/off.vmdk"
	[[ ! -e $T_DIR/off.vmdk ]] || fail "a refused create made $T_DIR/off.vmdk"
done
expect_fail 1 "$LUN is not on a mounted vmfs volume" "$VMFS" disk info "$LUN"
expect_fail 2 "--type" "$VMFS" disk create --size 1M --type thick "$MP/x.vmdk"
expect_fail 2 "--size" "$VMFS" disk create --type thin "$MP/x.vmdk"
for type in zeroedthick eagerzeroedthick; do
	expect_fail 1 "not enough free space.*use --type thin" \
		"$VMFS" disk create --size 64G --type "$type" "$MP/huge.vmdk"
	[[ ! -e $MP/huge.vmdk ]] || fail "a failed $type create left $MP/huge.vmdk behind"
done
# The engine itself on ENOSPC: a failed fallocate leaves no blocks behind.
sync
free0=$(stat -f -c %a "$MP")
expect_fail 1 "No space left" fallocate -l 64G "$MP/huge.raw"
rm -f "$MP/huge.raw"
sync
expect_eq "free blocks after a failed fallocate" "$(stat -f -c %a "$MP")" "$free0"
rm "$MP"/*.vmdk
t_umount "$MP"

# A small volume, filled with 0xab in every kind of block (file blocks,
# small blocks, inline data), then emptied: every block a new file gets
# has held the pattern.
step "fill a small volume with 0xab, then delete it all"
make_lun "$LUN" 1G
t_mkfs "$LUN" --force --max-hosts 4 --journal-size 1M
t_mount "$LUN" "$MP"
mkdir "$MP/fill"
pattern 0xab $((1 << 20)) >"$T_DIR/ab1m"
i=0
while cat "$T_DIR/ab1m" >>"$MP/fill/big" 2>/dev/null; do
	i=$((i + 1))
	((i < 4096)) || fail "the volume never filled up"
done
t_log "filled $i MiB of file blocks"
head -c 3000 "$T_DIR/ab1m" >"$T_DIR/ab3k"
head -c 1500 "$T_DIR/ab1m" >"$T_DIR/ab1500"
head -c 100000 "$T_DIR/ab1m" >"$T_DIR/ab100k"
for ((i = 0; i < 300; i++)); do
	cp "$T_DIR/ab100k" "$MP/fill/m$i" 2>/dev/null || break
	cp "$T_DIR/ab3k" "$MP/fill/s$i" 2>/dev/null || break
	cp "$T_DIR/ab1500" "$MP/fill/i$i" 2>/dev/null || break
done
sync
rm -r "$MP/fill"
sync

step "new files of every kind: no 0xab byte"
free=$(($(stat -f -c '%a * %S' "$MP")))
t_log "free after delete: $((free >> 20)) MiB"
disk=$(((free >> 20) / 4))M
"$VMFS" disk create --size "$disk" --type eagerzeroedthick "$MP/eager.vmdk"
"$VMFS" disk create --size "$disk" --type zeroedthick "$MP/zeroed.vmdk"
"$VMFS" disk create --size "$disk" --type thin "$MP/thin.vmdk"
# Thin: partial writes into blocks that get allocated by them.
for off in 0 $((1 << 20)) $((5 << 20)) $((7 << 20)); do
	pattern 0x11 5000 | dd of="$MP/thin.vmdk" bs=5000 seek=$((off + 777)) oflag=seek_bytes conv=notrunc status=none
done
# Zeroedthick: a partial first write into a to-be-zeroed block.
pattern 0x11 5000 | dd of="$MP/zeroed.vmdk" bs=5000 seek=$((3 << 20)) oflag=seek_bytes conv=notrunc status=none
# Truncate-grow of small, medium and large files.
for n in 1 200 3000 100000 $((3 << 20)); do
	pattern 0x22 "$n" >"$MP/grow$n"
	truncate -s $((n * 2 + 5000)) "$MP/grow$n"
	pattern 0x22 10 >>"$MP/grow$n"
done
# Punch a hole in a written file, then rewrite part of the hole.
pattern 0x33 $((6 << 20)) >"$MP/punched"
fallocate -p -o $((1 << 20)) -l $((3 << 20)) "$MP/punched"
pattern 0x33 3000 | dd of="$MP/punched" bs=3000 seek=$(((2 << 20) + 100)) oflag=seek_bytes conv=notrunc status=none
# Many small and medium files: small blocks and inline data.
for ((i = 0; i < 100; i++)); do
	pattern 0x44 $((i * 997 % 70000 + 1)) >"$MP/f$i"
	truncate -s $((i * 997 % 70000 + 4000)) "$MP/f$i"
done
fallocate -l 3M "$MP/falloc"
sync
no_ab "$MP"

step "again after umount/mount (nothing cached)"
t_umount "$MP"
t_mount "$LUN" "$MP"
no_ab "$MP"
t_umount "$MP"
t_log "PASS"
