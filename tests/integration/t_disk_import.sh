#!/usr/bin/env bash
# t_disk_import: vmfs disk import / clone / extend with qemu-img.
#  - a qcow2 made with qemu-img (data written with qemu-io at three
#    offsets) imports byte for byte equal to qemu-img's own raw
#    conversion; qemu-img info on the mount says raw and agrees with vmfs
#    disk info on the size; thin by default, zeroedthick allocates all;
#  - clone copies it byte for byte; extend grows it (the old bytes stay,
#    the new ones read as zeros) and refuses to shrink;
#  - an existing target, a path off the volume and a bad --type are
#    refused with a message, nothing changed.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
	skip "no qemu-img/qemu-io (make deps)"

LUN=$T_DIR/lun
MP=$T_DIR/mnt

step "mkfs, mount; a qcow2 with data"
make_lun "$LUN" 2G
t_mkfs "$LUN"
t_mount "$LUN" "$MP"
qemu-img create -q -f qcow2 "$T_DIR/src.qcow2" 16M
qemu-io -f qcow2 -c "write -P 0x5a 0 64k" -c "write -P 0xa5 5M 1M" \
	-c "write -P 0x11 16320k 64k" "$T_DIR/src.qcow2" >/dev/null
qemu-img convert -O raw "$T_DIR/src.qcow2" "$T_DIR/want.raw"

step "import: byte for byte, raw, thin"
"$VMFS" disk import "$T_DIR/src.qcow2" "$MP/d.img" >/dev/null ||
	fail "vmfs disk import failed"
cmp "$T_DIR/want.raw" "$MP/d.img" || fail "imported disk differs from qemu-img's raw"
expect_eq "qemu-img format" "$(qemu-img info --output=json "$MP/d.img" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" raw
expect_eq "size" "$("$VMFS" disk info "$MP/d.img" | sed -n 's/^size .*(\([0-9]*\) bytes)$/\1/p')" \
	"$(qemu-img info --output=json "$MP/d.img" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
"$VMFS" disk info "$MP/d.img" | grep -q '^type *thin' || fail "import is not thin"
[[ $(alloc_bytes "$MP/d.img") -lt $((8 << 20)) ]] ||
	fail "thin import allocated $(alloc_bytes "$MP/d.img") bytes"

step "import --type zeroedthick allocates everything"
"$VMFS" disk import --type zeroedthick "$T_DIR/src.qcow2" "$MP/z.img" >/dev/null ||
	fail "import --type zeroedthick failed"
cmp "$T_DIR/want.raw" "$MP/z.img" || fail "zeroedthick import differs"
[[ $(alloc_bytes "$MP/z.img") -ge $((16 << 20)) ]] ||
	fail "zeroedthick import allocated only $(alloc_bytes "$MP/z.img") bytes"

step "clone; extend"
"$VMFS" disk clone "$MP/d.img" "$MP/c.img" >/dev/null || fail "vmfs disk clone failed"
cmp "$MP/d.img" "$MP/c.img" || fail "clone differs"
"$VMFS" disk extend --size 24M "$MP/c.img" >/dev/null || fail "vmfs disk extend failed"
expect_eq "extended size" "$(stat -c %s "$MP/c.img")" $((24 << 20))
cmp -n $((16 << 20)) "$T_DIR/want.raw" "$MP/c.img" || fail "extend changed the old bytes"
cmp -i $((16 << 20)):0 -n $((8 << 20)) "$MP/c.img" /dev/zero ||
	fail "the extended part does not read as zeros"

step "refusals"
expect_fail 1 "already exists|File exists" "$VMFS" disk import "$T_DIR/src.qcow2" "$MP/d.img"
expect_fail 1 "not on a mounted vmfs volume" "$VMFS" disk import "$T_DIR/src.qcow2" "$T_DIR/off.img"
expect_fail 2 "thin or zeroedthick" "$VMFS" disk import --type eagerzeroedthick "$T_DIR/src.qcow2" "$MP/e.img"
expect_fail 1 "only grows" "$VMFS" disk extend --size 8M "$MP/c.img"
expect_fail 1 "not on a mounted vmfs volume" "$VMFS" disk clone "$T_DIR/want.raw" "$MP/x.img"
cmp "$T_DIR/want.raw" "$MP/d.img" || fail "a refused import changed d.img"
[[ -e $MP/e.img || -e $MP/x.img ]] && fail "a refused command left a file"

t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
