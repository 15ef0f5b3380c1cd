#!/usr/bin/env bash
#
# t_vm_ha_fallback: HA placement when the host chosen for a VM cannot run
# it, and a VM that fits on no host (vmfsd/ha.c; docs/OPERATIONS.md,
# "Placement").  Three disk-only hosts (HA needs no corosync: without it
# there is no quorum to ask), a 4 s lease.
#
#  - B gives VMs 200 MiB (--vm-memory), C 400 MiB; C's vmfsd runs without
#    QEMU in its PATH (a host set up wrong).  A runs three HA VMs: v1
#    (128 MiB), v2 (160 MiB) and v3 (512 MiB).
#  - kill -9 of A's vmfsd.  Every survivor computes the same placement:
#    v1 and v2 to C (the most memory), v3 to nobody (it fits nowhere).  C
#    tries them and fails, saying QEMU cannot be started; B, after the
#    fallback delay (5 s and its slot's share), finds v1 still not
#    running and starts it: v1's counter advances on B, one QEMU runs it,
#    and `vmfs vm status` tells the restart from A.  B has 72 MiB left
#    then and leaves v2 and v3 ("needs 160 MiB"); C leaves v3 too.
#  - v3 is logged as fitting nowhere by both survivors and runs nowhere.
#  - v1 is stopped on B: B advertises 200 MiB again, which is more than
#    it did and enough for v2; its agent looks again ("has room now") and
#    v2 runs on B (after the fallback delay: the placement still prefers
#    C), while v3 stays stopped.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/vm_lib.sh
source "$(dirname "$0")/vm_lib.sh"

LUN=$T_DIR/lun
LEASE_MS=4000
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# qemu_count VM: QEMUs of this test running VM, on any host.
qemu_count() {
	local pid args n=0
	while read -r pid args; do
		[[ $args == qemu-system* && $args == *"$T_DIR/mnt-"?"/vms/$1/"* ]] &&
			n=$((n + 1))
	done < <(ps -eo pid=,args=)
	echo "$n"
}

# A PATH with everything but QEMU: C's vmfsd cannot start a VM.
NOQEMU=$T_DIR/noqemu-bin
mkdir -p "$NOQEMU"
for f in /usr/local/bin/* /usr/bin/* /bin/*; do
	b=${f##*/}
	[[ $b == qemu* || -e $NOQEMU/$b ]] && continue
	ln -s "$f" "$NOQEMU/$b"
done

step "three disk-only hosts: B gives VMs 200 MiB, C 400 MiB and has no QEMU"
make_lun "$LUN" 1G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
hmount A --no-cluster --lease-ms "$LEASE_MS"
hmount B --no-cluster --lease-ms "$LEASE_MS" --vm-memory 200M
PATH="$NOQEMU:/usr/sbin:/sbin" hmount C --no-cluster --lease-ms "$LEASE_MS" \
	--vm-memory 400M
a=$(mp_of A)
b=$(mp_of B)
mkdir "$a/vms"
for h in B C; do
	want=$([[ $h == B ]] && echo 200 || echo 400)
	for ((i = 0; i < 50; i++)); do
		got=$("$VMFS" hosts --no-watch --json "$LUN" | python3 -c 'import json,sys
for h in json.load(sys.stdin)["hosts"]:
    if h.get("hostname") == sys.argv[1]: print(h.get("vm_free_mib"))' "$h")
		[[ $got == "$want" ]] && break
		sleep 0.2
	done
	expect_eq "memory host $h advertises for VMs (MiB)" "$got" "$want"
done

step "A runs v1 (128 MiB), v2 (160 MiB) and v3 (512 MiB), all HA"
for v in v1:128M v2:160M v3:512M; do
	vm A create "$a/vms/${v%%:*}" --memory "${v#*:}" --disk 64M:thin \
		--accel tcg --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
		>/dev/null || fail "vm create ${v%%:*} failed"
	vm A set "$a/vms/${v%%:*}" --ha on >/dev/null || fail "vm set ${v%%:*} failed"
	vm_start A "$a/vms/${v%%:*}"
done
for v in v1 v2 v3; do
	wait_counter "$a/vms/$v/disk0.img" 2 >/dev/null
done

step "kill -9 A's vmfsd: C is chosen for v1 and cannot start it; B takes it"
c0=$(counter "$a/vms/v1/disk0.img")
t_kill=$(now_ms)
t_kill_vmfsd "$(vmfsd_pid_of "$(cd "$a" && pwd -P)")" "$a"
t_end=$(($(now_ms) + 120000))
seen=
until [[ $(field B "$b/vms/v1" host 2>/dev/null) == B &&
	$(field B "$b/vms/v1" state 2>/dev/null) == running ]]; do
	(($(now_ms) < t_end)) ||
		fail "v1 not running on B 120 s after A's death: $(grep -h 'HA:' "$(log_of B)" "$(log_of C)" | tail -n 10)"
	sleep 0.2
done
c=$(wait_counter "$b/vms/v1/disk0.img" $((c0 + 1)))
t_log "v1 runs on B: counter $c0 -> $c, $(($(now_ms) - t_kill)) ms after the kill (lease $LEASE_MS ms)"
for h in B C; do
	for v in v1:128 v2:160; do
		grep -q "HA: placement: VM /vms/${v%%:*} (${v#*:} MiB) to host C" "$(log_of "$h")" ||
			fail "host $h did not place ${v%%:*} on C: $(grep -h 'HA:' "$(log_of "$h")" | tail -n 6)"
	done
done
grep -q "HA: cannot restart VM /vms/v1 here: cannot start QEMU .*No such file or directory" "$(log_of C)" ||
	fail "C does not say why it could not restart v1: $(grep -h 'HA:' "$(log_of C)" | tail -n 6)"
grep -q "HA: restarted VM /vms/v1 .* here" "$(log_of B)" ||
	fail "B does not log v1's restart: $(grep -h 'HA:' "$(log_of B)" | tail -n 6)"
why=$(field B "$b/vms/v1" restart)
[[ $why == *"from A"* ]] || fail "vm status of v1 does not tell the restart from A: '$why'"
for ((k = 0; k < 10; k++)); do
	n=$(qemu_count v1)
	((n == 1)) || fail "$n QEMUs run v1 (want exactly 1)"
	sleep 0.3
done

step "v3 fits on no host: both survivors say so and leave it; B leaves v2"
for h in B C; do
	grep -q "HA: placement: VM /vms/v3 (512 MiB): no host advertises room for it" "$(log_of "$h")" ||
		fail "host $h did not log that v3 fits nowhere: $(grep -h 'HA:' "$(log_of "$h")" | tail -n 6)"
	t_wait_grep 30 "HA: VM /vms/v3 needs 512 MiB, this host has [0-9]* MiB available: leaving it" "$(log_of "$h")" ||
		fail "host $h did not leave v3 for lack of memory: $(grep -h 'HA:' "$(log_of "$h")" | tail -n 6)"
done
t_wait_grep 30 "HA: VM /vms/v2 needs 160 MiB, this host has [0-9]* MiB available: leaving it" "$(log_of B)" ||
	fail "B did not leave v2 for lack of memory: $(grep -h 'HA:' "$(log_of B)" | tail -n 6)"
expect_eq "QEMUs running v3" "$(qemu_count v3)" 0
expect_eq "QEMUs running v2" "$(qemu_count v2)" 0

step "v1 stops on B: B has room again, and its agent starts v2 there"
c0=$(counter "$b/vms/v2/disk0.img")
vm B stop "$b/vms/v1" >/dev/null || fail "vm stop v1 on B failed"
wait_state B "$b/vms/v1" stopped
t_stop=$(now_ms)
until [[ $(field B "$b/vms/v2" host 2>/dev/null) == B &&
	$(field B "$b/vms/v2" state 2>/dev/null) == running ]]; do
	(($(now_ms) - t_stop < 60000)) ||
		fail "v2 not running on B 60 s after v1 stopped there: $(grep -h 'HA:' "$(log_of B)" | tail -n 8)"
	sleep 0.2
done
grep -q "HA: host B has room now for an HA VM left stopped for lack of memory (the smallest needs 160 MiB): looking again" "$(log_of B)" ||
	fail "B does not say why it looked again: $(grep -h 'HA:' "$(log_of B)" | tail -n 6)"
c=$(wait_counter "$b/vms/v2/disk0.img" $((c0 + 1)))
t_log "v2 runs on B: counter $c0 -> $c, $(($(now_ms) - t_stop)) ms after v1 stopped"
expect_eq "QEMUs running v2" "$(qemu_count v2)" 1
expect_eq "QEMUs running v3" "$(qemu_count v3)" 0

step "stop v2; unmount; fsck -n is clean"
vm B stop "$b/vms/v2" >/dev/null || fail "vm stop v2 on B failed"
wait_state B "$b/vms/v2" stopped
t_umount "$b"
t_umount "$(mp_of C)"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"

t_log "PASS"
