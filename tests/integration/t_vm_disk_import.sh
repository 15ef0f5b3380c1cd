#!/usr/bin/env bash
# t_vm_disk_import: VMs boot from disks brought onto the datastore with
# `vmfs disk import` and `vmfs disk clone` (real QEMU under TCG, the
# test guest, whose counter continues from the value on its disk):
#  - a qcow2 made with qemu-img whose first block holds counter 5000 is
#    imported as a VM's disk; the VM boots from it, says it starts at
#    5000, and the counter advances on the imported disk;
#  - that disk, cloned into a second VM, boots there and continues from
#    where the first VM stopped, while the source disk stays as it was.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/vm_lib.sh
source "$(dirname "$0")/vm_lib.sh"
command -v qemu-img >/dev/null || skip "no qemu-img (make deps)"
LUN=$T_DIR/lun

# mkvm NAME: a VM on A's mount whose disk0.img is not there yet.
mkvm() {
	vm A create "$a/vms/$1" --memory 256M --disk 16M:thin --accel tcg \
		--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
		fail "vmfs vm create $1 failed"
	rm "$a/vms/$1/disk0.img"
}

# starts_at VMDIR N: the guest's console says it booted with counter N.
starts_at() {
	# (the guest's shell on the same console may put its prompt first)
	tr -d '\r' <"$1/console.log" | grep -q "vmfs-guest: booted, counter starts at $2\$" ||
		fail "the guest in $1 did not start at $2: $(grep 'starts at' "$1/console.log")"
}

step "mkfs, mount; a qcow2 holding counter 5000"
make_lun "$LUN" 1G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
hmount A --no-cluster
a=$(mp_of A)
mkdir "$a/vms"
printf 'vmfs-guest-counter 5000\n' >"$T_DIR/first"
dd if="$T_DIR/first" of="$T_DIR/src.raw" bs=512 count=1 conv=sync 2>/dev/null
truncate -s 16M "$T_DIR/src.raw"
qemu-img convert -q -f raw -O qcow2 "$T_DIR/src.raw" "$T_DIR/src.qcow2"

step "import it as a VM's disk: the VM boots from it and counts on from 5000"
mkvm imp
"$VMFS" disk import "$T_DIR/src.qcow2" "$a/vms/imp/disk0.img" >/dev/null ||
	fail "vmfs disk import failed"
expect_eq "imported counter" "$(counter "$a/vms/imp/disk0.img")" 5000
vm_start A "$a/vms/imp"
c1=$(wait_counter "$a/vms/imp/disk0.img" 5000)
wait_counter "$a/vms/imp/disk0.img" "$((c1 + 5))" >/dev/null
starts_at "$a/vms/imp" 5000
vm A stop "$a/vms/imp" >/dev/null || fail "vm stop of imp failed"
c2=$(counter "$a/vms/imp/disk0.img")
t_log "imported disk: 5000 -> $c2"

step "clone it into a second VM: that one continues from $c2"
mkvm cln
"$VMFS" disk clone "$a/vms/imp/disk0.img" "$a/vms/cln/disk0.img" >/dev/null ||
	fail "vmfs disk clone failed"
vm_start A "$a/vms/cln"
c3=$(wait_counter "$a/vms/cln/disk0.img" "$((c2 + 5))")
starts_at "$a/vms/cln" "$c2"
expect_eq "the clone's source after the clone ran" "$(counter "$a/vms/imp/disk0.img")" "$c2"
vm A stop --force "$a/vms/cln" >/dev/null || fail "vm stop of cln failed"
t_log "cloned disk: $c2 -> $c3"

"$VMFS" umount --state-dir "$(state_of A)" "$a" || fail "umount failed"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the runs: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
