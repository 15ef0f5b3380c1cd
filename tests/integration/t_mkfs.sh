#!/usr/bin/env bash
#
# t_mkfs: mkfs refuses to destroy, and scales to the LUNs datastores use.
#
#   - an ext4 filesystem, a GPT and an MBR partition table, an LVM
#     physical volume: refused without --force, named (type, label,
#     uuid), the LUN left as it was; --force overwrites and wipes the old
#     signature (blkid finds nothing afterwards);
#   - a volume a host has mounted (a real vmfsd): refused even with
#     --force, naming the live heartbeat slot and host; the mount goes on;
#   - what mkfs writes (du of sparse LUN files of 2 GiB, 1 TiB, 64 TiB)
#     stays under 128 MiB whatever the size: inode and pointer-block
#     clusters are initialised at first use;
#   - such a volume works: files across several inode clusters, a
#     pointer-block cluster's first use, fsck -n clean.
#
# pvcreate needs a block device (it refuses a file: "No device found"),
# and a loop device would touch the host's LVM state; the LVM case writes
# the label pvcreate writes (sector 1: LABELONE + LVM2 001 + PV uuid, crc
# as lvm2 computes it) and checks that blkid agrees it is a PV.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
mkdir -p "$MP"
SMALL=(--max-hosts 4 --journal-size 1M)

sum() {
	sha256sum "$1" | cut -d' ' -f1
}

# refused PATTERN: mkfs without --force exits 1 naming the content
# (and pointing at --force), and writes nothing.
refused() {
	local before
	before=$(sum "$LUN")
	expect_fail 1 "$1.*use --force to overwrite it" "$VMFS" mkfs "${SMALL[@]}" "$LUN"
	expect_eq "LUN after a refused mkfs" "$(sum "$LUN")" "$before"
}

# forced WHAT: mkfs --force names what it overwrites; afterwards blkid
# finds no signature and the volume checks clean.
forced() {
	local rc=0
	"$VMFS" mkfs --force "${SMALL[@]}" "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" ||
		fail "mkfs --force over $1 failed: $(cat "$T_DIR/err")"
	grep -qF "overwriting $1" "$T_DIR/err" ||
		fail "mkfs --force did not name the $1 it overwrote: $(cat "$T_DIR/err")"
	blkid -p "$LUN" >"$T_DIR/blkid" 2>&1 || rc=$?
	expect_eq "blkid -p exit after mkfs --force (2: nothing found; $(cat "$T_DIR/blkid"))" "$rc" 2
	"$VMFS" fsck -n "$LUN" >/dev/null || fail "fsck -n after mkfs --force over $1"
}

step "an ext4 filesystem: refused and named; --force wipes it"
make_lun "$LUN" 256M
mkfs.ext4 -q -F -L t-ext4-data "$LUN"
refused "existing ext4 filesystem \\(label 't-ext4-data', uuid [0-9a-f-]+\\)"
forced "ext4 filesystem"

if command -v sfdisk >/dev/null; then
	step "a GPT partition table, then an MBR one: refused and named"
	make_lun "$LUN" 256M
	printf 'label: gpt\n,100M\n,\n' | sfdisk -q "$LUN"
	refused "existing gpt partition table"
	forced "gpt partition table"
	make_lun "$LUN" 256M
	printf 'label: dos\n,100M\n' | sfdisk -q "$LUN"
	refused "existing dos partition table"
	forced "dos partition table"
else
	t_log "no sfdisk (Debian fdisk): partition tables not tested"
fi

step "an LVM physical volume: refused and named"
make_lun "$LUN" 256M
python3 - "$LUN" <<'EOF'
import struct, sys, zlib
# lvm2 label_header (sector 1) and pv_header; lvm2's crc is crc32 with
# initial value 0xf597a6cf and no final xor.
sec = bytearray(512)
sec[0:8] = b"LABELONE"
sec[8:16] = struct.pack("<Q", 1)
sec[20:24] = struct.pack("<I", 32)
sec[24:32] = b"LVM2 001"
sec[32:64] = b"Zx3Dq5PcHwCRx1aYLy0Pq6wqs6mKzqWn"
sec[64:72] = struct.pack("<Q", 256 << 20)
crc = zlib.crc32(bytes(sec[20:]), 0xf597a6cf ^ 0xffffffff) ^ 0xffffffff
sec[16:20] = struct.pack("<I", crc)
with open(sys.argv[1], "r+b") as f:
    f.seek(512)
    f.write(sec)
EOF
blkid -p -s TYPE -o value "$LUN" | grep -qx LVM2_member ||
	fail "blkid does not see the test's LVM label as a PV"
refused "existing LVM physical volume \\(type LVM2_member, uuid Zx3Dq5-PcHw-CRx1-aYLy-0Pq6-wqs6-mKzqWn\\)"
forced "LVM physical volume"

step "a volume a live host has mounted: refused even with --force"
make_lun "$LUN" 256M
t_mkfs "$LUN" "${SMALL[@]}" --label t-live
uuid=$("$VMFS" info --json "$LUN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
t_mount "$LUN" "$MP"
echo before >"$MP/kept"
expect_fail 1 "heartbeat slot 0 \\(host [^,]+, uuid [0-9a-f-]+\\) is live" \
	"$VMFS" mkfs --force "${SMALL[@]}" "$LUN"
grep -qF -- "--force does not override this" "$T_DIR/err" ||
	fail "the refusal does not say that --force does not help: $(cat "$T_DIR/err")"
expect_eq "volume uuid after the refused mkfs" \
	"$("$VMFS" info --json "$LUN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')" "$uuid"
echo after >>"$MP/kept"
expect_eq "file on the mount after the refused mkfs" "$(cat "$MP/kept")" "$(printf 'before\nafter')"
t_umount "$MP"
"$VMFS" mkfs --force "${SMALL[@]}" "$LUN" >/dev/null 2>"$T_DIR/err" ||
	fail "mkfs --force after the host unmounted: $(cat "$T_DIR/err")"

step "bytes mkfs writes do not grow with the LUN (2 GiB, 1 TiB, 64 TiB)"
# 64 TiB needs a filesystem that takes such a file (ext4 stops at 16 TiB;
# XFS and tmpfs do not).
BIG_DIR=$T_DIR
if ! truncate -s 64T "$BIG_DIR/probe" 2>/dev/null; then
	BIG_DIR=
	if [[ -d /dev/shm ]] && SHM_DIR=$(mktemp -d /dev/shm/vmfs-t_mkfs.XXXXXX); then
		T_EXTRA_DIRS+=("$SHM_DIR")
		truncate -s 64T "$SHM_DIR/probe" 2>/dev/null && BIG_DIR=$SHM_DIR
	fi
fi
rm -f "$T_DIR/probe"
[[ -z ${SHM_DIR:-} ]] || rm -f "$SHM_DIR/probe"
sizes=(2G 1T)
if [[ -n $BIG_DIR ]]; then
	sizes+=(64T)
else
	t_log "no filesystem here takes a 64 TiB sparse file: 64 TiB not tested"
fi
for size in "${sizes[@]}"; do
	lun=${BIG_DIR:-$T_DIR}/lun-$size
	[[ $size == 64T ]] || lun=$T_DIR/lun-$size
	make_lun "$lun" "$size"
	t_mkfs "$lun"
	bytes=$(du -B1 "$lun" | cut -f1)
	t_log "mkfs on $size: $bytes bytes allocated"
	((bytes < 128 << 20)) ||
		fail "mkfs on a $size LUN allocated $bytes bytes (bound: 128 MiB)"
	"$VMFS" fsck -n "$lun" >/dev/null || fail "fsck -n of a fresh $size volume"
	[[ $size == 2G ]] || rm -f "$lun"
done

step "a lazily initialised volume works: several inode clusters, a pointer-block cluster"
lun=$T_DIR/lun-1T
make_lun "$lun" 1T
t_mkfs "$lun" "${SMALL[@]}"
per=$("$VMFS" info --json "$lun" | python3 -c '
import json, sys
print(json.load(sys.stdin)["areas"]["inodes"]["per_cluster"])') ||
	fail "vmfs info --json has no per_cluster for the inode area"
nfiles=$((per * 2 + 100))
t_mount "$lun" "$MP"
mkdir "$MP/vm"
for ((i = 0; i < nfiles; i++)); do
	: >"$MP/vm/f$i"
done
echo "far out" | dd of="$MP/vm/sparse.vmdk" bs=1M seek=$((512 * 1024)) conv=notrunc status=none
t_umount "$MP"
"$VMFS" fsck -n "$lun" >"$T_DIR/fsck.out" || fail "fsck -n: $(cat "$T_DIR/fsck.out")"
t_mount "$lun" "$MP"
expect_eq "files after remount" "$(find "$MP/vm" -type f | wc -l)" "$((nfiles + 1))"
expect_eq "far block" "$(dd if="$MP/vm/sparse.vmdk" bs=1M skip=$((512 * 1024)) count=1 status=none)" "far out"
t_umount "$MP"
rm -f "$lun"

step "done"
