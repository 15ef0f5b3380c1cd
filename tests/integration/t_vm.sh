#!/usr/bin/env bash
# t_vm: the VM monitor on two hosts (A, B: two vmfsd, two state
# directories, two FUSE mounts of one LUN file), with real QEMU (TCG) and
# the test guest of `make guest`, whose /init writes "vmfs-guest-counter
# N" to the first block of its disk every 100 ms.
#
#  - create a VM on the datastore (with a NIC; bad --nic values are
#    refused); start it on A: the counter advances on
#    its disk; list and status from B say it runs on A;
#  - start on B fails naming A; a second start on A fails; umount of A
#    refuses while the VM runs;
#  - stop on A (ACPI power-down), start on B: the counter continues from
#    what A's run wrote; list from A says B;
#  - kill -9 of QEMU on B: stopped/crashed on both hosts, locks released,
#    B's log quotes the end of QEMU's log,
#    it starts again (on A) and stops with --force;
#  - config errors (missing disk, memory 0, unknown key, bad JSON): start
#    fails with the file and key named, nothing runs;
#  - umount refuses while a VM runs; umount --stop-vms stops it first.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

# shellcheck source=tests/integration/vm_lib.sh
source "$(dirname "$0")/vm_lib.sh"
LUN=$T_DIR/lun

step "mkfs; hosts A and B mount the volume"
vm_two_hosts

step "create the VM on A's mount"
# TCG: a /dev/kvm may exist that accepts VMs but never runs them.
vm A create "$a/vms/g1" --memory 256M --cpus 1 --disk 64M:thin --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
	--nic virtio-net-pci:52:54:00:12:34:56 >/dev/null ||
	fail "vmfs vm create failed"
[[ -f $b/vms/g1/vm.json ]] || fail "B does not see the VM's config"
expect_eq "the NIC in vm.json" "$(python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["nics"]; print(n[0]["model"], n[0]["mac"], len(n))' "$b/vms/g1/vm.json")" \
	"virtio-net-pci 52:54:00:12:34:56 1"
expect_fail 2 "nics\[0\].model" vm A create "$a/vms/badnic" --memory 256M --disk 8M \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" --nic "e1000,hostfwd=tcp::2222-:22"
expect_fail 2 "nics\[0\].mac" vm A create "$a/vms/badnic" --memory 256M --disk 8M \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" --nic "e1000:52:54:00"
[[ -e $a/vms/badnic ]] && fail "a refused --nic left $a/vms/badnic"

step "start on A: the counter advances on its disk"
vm A start "$a/vms/g1" >/dev/null || fail "vm start on A failed"
pid=$(field A "$a/vms/g1" pid)
QEMU_PIDS+=("$pid")
tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx "user,model=virtio-net-pci,mac=52:54:00:12:34:56" ||
	fail "QEMU runs without the VM's NIC: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
c1=$(wait_counter "$a/vms/g1/disk0.img" 0)
c2=$(wait_counter "$a/vms/g1/disk0.img" $((c1 + 5)))
t_log "A: counter $c1 -> $c2"

step "list and status from B say it runs on A"
vm B list "$b" | grep -E "/vms/g1 +running +A" >/dev/null ||
	fail "vm list on B: $(vm B list "$b")"
expect_eq "state on B" "$(field B "$b/vms/g1" state)" running
expect_eq "host on B" "$(field B "$b/vms/g1" host)" A

step "start on B fails naming A; a second start on A fails; umount of A refuses"
expect_fail 1 "runs on host A" vm B start "$b/vms/g1"
expect_fail 1 "already runs on this host" vm A start "$a/vms/g1"
expect_fail 1 "VM.*run.*--stop-vms" "$VMFS" umount --state-dir "$(state_of A)" "$a"
t_pid_alive "$pid" || fail "QEMU died after the refused requests"

step "stop on A (power-down); start on B continues the count"
vm A stop "$a/vms/g1" >/dev/null || fail "vm stop on A failed"
t_pid_alive "$pid" && fail "QEMU $pid still runs after vm stop"
grep -q "power button" "$a/vms/g1/console.log" ||
	fail "the guest did not see the ACPI power button"
expect_eq "state on B after stop" "$(field B "$b/vms/g1" state)" stopped
c3=$(counter "$a/vms/g1/disk0.img")
vm B start "$b/vms/g1" >/dev/null || fail "vm start on B failed"
pid=$(field B "$b/vms/g1" pid)
QEMU_PIDS+=("$pid")
c4=$(wait_counter "$b/vms/g1/disk0.img" "$c3")
# The serial console ends lines with CR LF (and the guest's shell on it
# may put its prompt first).
tr -d '\r' <"$b/vms/g1/console.log" | grep -q "vmfs-guest: booted, counter starts at $c3\$" ||
	fail "B's guest did not continue from $c3: $(grep 'starts at' "$b/vms/g1/console.log")"
t_log "stopped at $c3 on A, B continues: $c4"
expect_eq "host on A" "$(field A "$a/vms/g1" host)" B

step "kill -9 QEMU on B: stopped/crashed everywhere, it starts again"
kill -KILL "$pid"
wait_state B "$b/vms/g1" crashed
wait_state A "$a/vms/g1" stopped
t_wait_grep 10 "VM /vms/g1: QEMU's log .*qemu-B.log ends: " "$(log_of B)" ||
	fail "B's vmfsd did not log the end of QEMU's log after the crash: $(grep 'VM /vms/g1' "$(log_of B)" | tail -n 3)"
vm A start "$a/vms/g1" >/dev/null || fail "start on A after the crash failed"
pid=$(field A "$a/vms/g1" pid)
QEMU_PIDS+=("$pid")
wait_counter "$a/vms/g1/disk0.img" "$c4" >/dev/null
vm A stop --force "$a/vms/g1" >/dev/null || fail "vm stop --force failed"
# B's supervisor still remembers how its own run ended.
wait_state B "$b/vms/g1" "stopped|crashed"
expect_eq "state on A after --force" "$(field A "$a/vms/g1" state)" stopped

step "config errors: clear, nothing started"
bad() {  # NAME PATTERN: vm.json of $a/vms/NAME is already written
	expect_fail 1 "$2" vm A start "$a/vms/$1"
	expect_eq "state of $1" "$(field A "$a/vms/$1" state)" stopped
}
mk() { mkdir "$a/vms/$1"; cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$a/vms/$1/"; printf '%s\n' "$2" >"$a/vms/$1/vm.json"; }
boot='"accel": "tcg", "boot": {"kernel": "vmlinuz", "initrd": "initrd.img"}'
mk nodisk "{\"name\": \"nodisk\", \"memory_mib\": 256, \"disks\": [\"gone.img\"], $boot}"
bad nodisk 'vm.json: "disks\[0\]" names .*gone.img'
mk mem0 "{\"name\": \"mem0\", \"memory_mib\": 0, $boot}"
bad mem0 'vm.json: "memory_mib" is 0; allowed: 16'
mk unk "{\"name\": \"unk\", \"memory_mib\": 256, \"memroy\": 1, $boot}"
bad unk 'vm.json: unknown key "memroy"'
mk badjson "{\"name\": \"badjson\", \"memory_mib\": 256,"
bad badjson 'vm.json: not valid JSON'

step "umount --stop-vms of B stops its VM; destroy; fsck -n is clean"
vm B start "$b/vms/g1" >/dev/null || fail "start on B failed"
pid=$(field B "$b/vms/g1" pid)
QEMU_PIDS+=("$pid")
"$VMFS" umount --stop-vms "$b" || fail "umount --stop-vms of B failed"
t_pid_alive "$pid" && fail "QEMU $pid survived umount --stop-vms"
expect_eq "state on A after B's umount" "$(field A "$a/vms/g1" state)" stopped
vm A destroy "$a/vms/g1" >/dev/null || fail "vm destroy failed"
[[ -e $a/vms/g1 ]] && fail "the destroyed VM's directory is still there"
"$VMFS" umount --state-dir "$(state_of A)" "$a" || fail "umount A failed"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n after the VM runs: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
