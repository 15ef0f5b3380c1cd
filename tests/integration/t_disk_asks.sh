#!/usr/bin/env bash
#
# t_disk_asks: hosts with no corosync keep their locks between operations
# and ask each other for them through the heartbeat slots
# (docs/PROTOCOL.md §9a).  Three hosts mount with --no-cluster.
#   - A creates files in its own directory: its lock cache is on, and it
#     keeps the directory's lock after the creates (vmfs locks); its
#     kernel keeps the names.
#   - B lists A's directory: every name is there, within the lease; B
#     asked on the disk and A was asked.
#   - C stats a file A keeps open for writing: answered from the disk
#     well within the lease (A answered "kept"), with the file's size.
#   - The kernel keeps names and attributes under kept locks, READONLY
#     ones too: a change on another host shows at once (kcache.sh), each
#     time because the kernel was told to forget.
#   - Hosts taking turns in one directory: every host lists the same
#     names.
#   - Three hosts whose kernels keep the names of one directory create
#     in it at once, each needing to upgrade its READONLY lock: none
#     fails (one lets go of its lock, PROTOCOL.md §9).
#   - A host mounted with --disk-asks off cannot ask: nobody caches.
#   - fsck -n is clean; bad --disk-asks values are refused.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/kcache.sh
source "$(dirname "$0")/kcache.sh"

LUN=$T_DIR/lun
LEASE_MS=4000

now_ms() { date +%s%3N; }

# info_field H KEY [any]: KEY of host H's `vmfs info --json` cluster
# object (with "any": wherever it is).
info_field() {
	"$VMFS" info --json "$(mp_of "$1")" | python3 -c '
import json, sys
def find(o, k):
    if isinstance(o, dict):
        if k in o:
            return o[k]
        for x in o.values():
            r = find(x, k)
            if r is not None:
                return r
    return None
d = json.load(sys.stdin)
v = find(d, sys.argv[1]) if sys.argv[2] == "any" else d["cluster"].get(sys.argv[1])
print(str(v).lower() if v is not None else "missing")' "$2" "${3:-cluster}"
}

# wait_caching H on|off: host H's lock cache is on (true) or off within 20 s.
wait_caching() {
	local want=$2 t0
	t0=$(now_ms)
	until [[ $(info_field "$1" caching) == "$want" ]]; do
		(($(now_ms) - t0 < 20000)) ||
			fail "host $1: lock cache not $want after 20 s: $("$VMFS" info "$(mp_of "$1")" 2>&1 | grep 'lock cache')"
		sleep 0.2
	done
}

step "bad values are refused"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
expect_fail 2 "disk-asks 'maybe': must be on or off" \
	"$VMFS" mount --disk-asks maybe "$LUN" "$T_DIR"

step "three hosts without corosync cache their locks"
for h in a b c; do
	hmount "$h" --no-cluster --lease-ms "$LEASE_MS"
done
for h in a b c; do
	wait_caching "$h" true
done
# Each host's HA agent walks the datastore once after its mount, which
# asks for whatever another host keeps: let those walks end first.
for h in a b c; do
	t_wait_grep 20 "HA: no HA VM left to restart" "$(log_of "$h")" ||
		fail "host $h's HA agent did not finish its first scan"
done

step "A works in its own directory: it keeps its locks"
mkdir "$(mp_of a)/own"
for i in $(seq 1 200); do
	echo "$i" >"$(mp_of a)/own/f$i"
done
(($(info_field a cached) >= 2)) ||
	fail "A keeps $(info_field a cached) locks after 200 creates"
expect_eq "the lock of A's directory on the disk" \
	"$("$VMFS" locks --json --path /own --host a "$LUN" | python3 -c '
import json, sys
print(" ".join(l["path"] + " " + l["mode"] for l in json.load(sys.stdin)["locks"]))')" \
	"/own exclusive"
# Every host can ask A on the disk: A's kernel keeps the names under
# the lock it keeps (PROTOCOL.md §9).
names=$(info_field a kernel_names any)
((names >= 200)) || fail "A's kernel keeps $names names after 200 creates in its own directory"

step "B lists A's directory: asked on the disk, everything there"
t0=$(now_ms)
n=$(find "$(mp_of b)/own" -type f | wc -l)
took=$(($(now_ms) - t0))
expect_eq "names B sees in A's directory" "$n" 200
expect_eq "f200's content on B" "$(cat "$(mp_of b)/own/f200")" 200
((took < LEASE_MS)) || fail "B's listing took $took ms (lease $LEASE_MS ms)"
t_log "B listed A's directory in $took ms"
(($(info_field b disk_asked) >= 1)) || fail "B did not ask on the disk"
(($(info_field a disk_requests) >= 1)) || fail "A was not asked on the disk"
t_wait_grep 10 "host b (slot [0-9]*) asked on the disk for the lock at [0-9]*: letting go of it and of every lock kept as a cache" "$(log_of a)" ||
	fail "A's log does not say B asked: $(tail -n 5 "$(log_of a)")"

step "C stats a file A keeps open for writing: answered from the disk"
exec {fd}>"$(mp_of a)/own/disk.img"
head -c 65536 /dev/zero >&"$fd"
sync "$(mp_of a)/own/disk.img"
echo x >"$(mp_of a)/own/after"   # A caches again, the open file's lock too
t0=$(now_ms)
size=$(stat -c %s "$(mp_of c)/own/disk.img")
took=$(($(now_ms) - t0))
exec {fd}>&-
expect_eq "size C sees of the file open on A" "$size" 65536
((took < LEASE_MS)) || fail "C's stat took $took ms (lease $LEASE_MS ms)"
t_log "C's stat of a file open on A took $took ms"
(($(info_field a disk_busy) >= 1)) || fail "A did not answer \"kept\""

step "the kernel keeps names under kept locks, READONLY too; changes on another host show at once"
kc_prepare "$(mp_of a)/kc"
# B's first look asks A on the disk, and both take the lock in turns for
# 5 s (PROTOCOL.md §9a) with nothing kept; then B keeps it READONLY.
ls "$(mp_of b)/kc" >/dev/null
sleep 6
for f in $KC_NAMES $KC_NAMES; do
	stat "$(mp_of b)/kc/$f" >/dev/null || fail "stat of kc/$f on B"
done
before=$(info_field b kernel_names any)
((before >= 7)) || fail "B's kernel keeps $before names after reading A's directory (READONLY)"
f0=$(info_field b kernel_forgotten any)
KC_FRESH_S=6 kc_changes "names B keeps READONLY, changed on A" "$(mp_of b)/kc" "$(mp_of a)/kc"
f1=$(info_field b kernel_forgotten any)
((f1 > f0)) || fail "B's kernel was told to forget nothing as A took the directory ($f0 -> $f1)"
kc_prepare "$(mp_of a)/kc2"
kc_changes "names A keeps EXCLUSIVE, changed on C" "$(mp_of a)/kc2" "$(mp_of c)/kc2"
for h in a b c; do
	expect_eq "times host $h's kernel let names expire instead of being told" \
		"$(info_field "$h" kernel_expired any)" 0
done
t_log "B's kernel kept $before names under its READONLY lock and forgot $((f1 - f0)) as A took it; every change showed at once"

step "three hosts take turns in one directory"
mkdir "$(mp_of a)/shared"
pids=()
for h in a b c; do
	(for i in $(seq 1 30); do
		echo "$h$i" >"$(mp_of "$h")/shared/$h$i" || exit 1
	done) &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a host's creates in the shared directory failed"
done
for h in a b c; do
	expect_eq "names host $h sees in the shared directory" \
		"$(find "$(mp_of "$h")/shared" -type f | wc -l)" 90
done
expect_eq "b17's content on C" "$(cat "$(mp_of c)/shared/b17")" b17

step "three hosts keeping one directory's names READONLY create in it at once"
mkdir "$(mp_of a)/up"
for r in $(seq 1 8); do
	for h in a b c; do
		ls -l "$(mp_of "$h")/up" >/dev/null
	done
	pids=()
	for h in a b c; do
		(mkdir "$(mp_of "$h")/up/$h$r" && echo "$h$r" >"$(mp_of "$h")/up/f$h$r") &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || fail "round $r: a create in a directory all hosts keep READONLY failed"
	done
done
for h in a b c; do
	expect_eq "entries host $h sees in up/" "$(find "$(mp_of "$h")/up" -mindepth 1 | wc -l)" 48
done
expired=0 gave=0
for h in a b c; do
	expired=$((expired + $(info_field "$h" kernel_expired any)))
	gave=$((gave + $(grep -c "could not be upgraded in" "$(log_of "$h")" || true)))
done
t_log "8 rounds of three hosts creating at once in up/: $gave upgrades given up, $expired drops that let names expire"

step "two hosts keeping a directory's names READONLY create in it at once"
# Each one's create holds the directory in its kernel while it waits for
# the other to let go: the one that gives up lets the names its kernel
# keeps expire (it cannot tell the kernel while its own request holds
# the directory), then takes the lock afresh (PROTOCOL.md §9).
mkdir "$(mp_of a)/both"
for f in n1 n2 n3; do echo "$f" >"$(mp_of a)/both/$f"; done
e0=$(($(info_field a kernel_expired any) + $(info_field b kernel_expired any)))
for r in 1 2 3; do
	sleep 6   # the turns of the round before are over: both keep it again
	for h in a b; do
		for f in n1 n2 n3 n1 n2 n3; do stat "$(mp_of "$h")/both/$f" >/dev/null; done
	done
	t0=$(now_ms)
	pids=()
	for h in a b; do
		echo "$h$r" >"$(mp_of "$h")/both/$h$r" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || fail "round $r: a create in a directory both hosts keep READONLY failed"
	done
	t_log "round $r: both creates done in $(($(now_ms) - t0)) ms"
done
expect_eq "names in both/ on B" "$(ls "$(mp_of b)/both" | wc -l)" 9
e1=$(($(info_field a kernel_expired any) + $(info_field b kernel_expired any)))
t_log "drops that let names expire in the 3 rounds: $((e1 - e0))"

step "a host that cannot ask on the disk turns the others' cache off"
t_umount "$(mp_of c)"
hmount c --no-cluster --lease-ms "$LEASE_MS" --disk-asks off
wait_caching a false
wait_caching b false
expect_eq "host c's lock cache" "$(info_field c caching)" false
echo y >"$(mp_of c)/own/from-c"
expect_eq "A sees C's file" "$(cat "$(mp_of a)/own/from-c")" y

step "fsck -n is clean after every host left"
for h in a b c; do
	t_umount "$(mp_of "$h")"
done
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 ||
	fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
t_log "ok"
