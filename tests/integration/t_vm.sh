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
#    it starts again (on A) and stops with --force;
#  - config errors (missing disk, memory 0, unknown key, bad JSON): start
#    fails with the file and key named, nothing runs;
#  - umount refuses while a VM runs; umount --stop-vms stops it first.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

t_need_guest
LUN=$T_DIR/lun
QEMU_PIDS=()

# QEMU processes the test saw: killed by PID if anything is left.
vm_cleanup() {
	local rc=$? pid
	set +e
	for pid in "${QEMU_PIDS[@]}"; do
		t_pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	(exit "$rc")
	t_cleanup
}
trap vm_cleanup EXIT

vm() { local h=$1; shift; VMFS_STATE_DIR=$(state_of "$h") "$VMFS" vm "$@"; }

# field H VMPATH KEY: a field of `vmfs vm status --json` on host H.
field() {
	vm "$1" status --json "$2" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$3"
}

# counter FILE: the guest's counter on its disk (read with O_DIRECT).
counter() {
	dd if="$1" bs=512 count=1 iflag=direct 2>/dev/null | head -c 64 |
		tr -d '\0' | sed -n 's/^vmfs-guest-counter \([0-9]*\)$/\1/p' | head -1
}

# wait_counter FILE ABOVE: until the counter exceeds ABOVE (120 s).
wait_counter() {
	local i c
	for ((i = 0; i < 1200; i++)); do
		c=$(counter "$1")
		[[ -n $c && $c -gt $2 ]] && { echo "$c"; return 0; }
		sleep 0.1
	done
	fail "the guest's counter in $1 stayed at '${c:-none}' (want > $2); console: $(tail -n 5 "$(dirname "$1")/console.log" 2>/dev/null)"
}

# wait_state H VMPATH STATE: until status on H matches the regex STATE (60 s).
wait_state() {
	local i s
	for ((i = 0; i < 300; i++)); do
		s=$(field "$1" "$2" state)
		[[ $s =~ ^($3)$ ]] && return 0
		sleep 0.2
	done
	fail "host $1: state of $2 is '$s', expected '$3'"
}

step "mkfs; hosts A and B mount the volume"
make_lun "$LUN" 1G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
hmount A --no-cluster
hmount B --no-cluster
a=$(mp_of A)
b=$(mp_of B)
mkdir "$a/vms"

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
# The serial console ends lines with CR LF.
tr -d '\r' <"$b/vms/g1/console.log" | grep -qx "vmfs-guest: booted, counter starts at $c3" ||
	fail "B's guest did not continue from $c3: $(grep 'starts at' "$b/vms/g1/console.log")"
t_log "stopped at $c3 on A, B continues: $c4"
expect_eq "host on A" "$(field A "$a/vms/g1" host)" B

step "kill -9 QEMU on B: stopped/crashed everywhere, it starts again"
kill -KILL "$pid"
wait_state B "$b/vms/g1" crashed
wait_state A "$a/vms/g1" stopped
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
