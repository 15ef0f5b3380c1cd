#!/usr/bin/env bash
#
# t_hosts_locks: `vmfs hosts` and `vmfs locks` read the heartbeat slots
# and the lock records from the LUN.  Unmounted: no host, no lock.
# Mounted: this host live, with its name and UUID; the mount holds no
# lock yet (the engine takes none today).  Locks taken by a test host
# (build/lockhold, through the lock manager) are listed with their
# object, path, mode and holder; --path and --host filter them; a holder
# whose slot was freed is stale.  kill -9 of vmfsd: the host shows dead
# with its journal state.  --json parses; bad arguments get clear errors.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
LOCKHOLD=$VMFS_BUILD/lockhold
[[ -x $LOCKHOLD ]] || fail "$LOCKHOLD missing: make $VMFS_BUILD/lockhold"

# json_rows CMD...: run a --json command, one line per element of its
# array KEY (first argument after --), the fields asked for.
json_rows() {
	local key=$1
	shift
	local fields=()
	while [[ $1 != -- ]]; do fields+=("$1"); shift; done
	shift
	"$@" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
for e in doc[sys.argv[1]]:
    print(" ".join(str(e.get(f)) for f in sys.argv[2:]))' "$key" "${fields[@]}"
}

step "mkfs: no host, no lock"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
out=$("$VMFS" hosts "$LUN")
grep -q "every slot is free" <<<"$out" || fail "hosts on a fresh volume: $out"
expect_eq "hosts --json on a fresh volume" \
	"$(json_rows hosts slot -- "$VMFS" hosts --json "$LUN")" ""
out=$("$VMFS" locks "$LUN")
grep -q "no lock is held" <<<"$out" || fail "locks on a fresh volume: $out"
expect_eq "locks --json on a fresh volume" \
	"$(json_rows locks addr -- "$VMFS" locks --json "$LUN")" ""

step "bad arguments"
expect_fail 2 "missing LUN" "$VMFS" hosts
expect_fail 2 "missing LUN" "$VMFS" locks
expect_fail 2 "unknown option '--bogus'" "$VMFS" hosts --bogus "$LUN"
expect_fail 2 "needs a value" "$VMFS" locks "$LUN" --host
expect_fail 2 "unexpected argument" "$VMFS" locks "$LUN" "$LUN"
expect_fail 1 "no vmfsd answers for $T_DIR" "$VMFS" hosts "$T_DIR"
expect_fail 1 "no vmfsd answers for $T_DIR" "$VMFS" locks "$T_DIR"
expect_fail 1 "cannot open LUN" "$VMFS" hosts "$T_DIR/nonexistent"
expect_fail 1 "not a vmfs volume" "$VMFS" locks "$T_DIR/mkfs.out"
expect_fail 1 "no file /nope on the volume" "$VMFS" locks --path /nope "$LUN"

step "mount: this host is live, with its name and UUID"
t_mount "$LUN" "$MP"
uuid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["hosts"][0]["host_uuid"])' \
	< <("$VMFS" info --json "$LUN"))
expect_eq "hosts while mounted" \
	"$(json_rows hosts slot state liveness hostname host_uuid -- "$VMFS" hosts --json "$LUN")" \
	"0 live live $(hostname) $uuid"
out=$("$VMFS" hosts "$LUN")
grep -qE "^0 +live +$(hostname) +$uuid" <<<"$out" || fail "hosts text: $out"
# The mount point stands for the LUN its vmfsd serves.
expect_eq "hosts of the mount point" \
	"$(json_rows hosts slot state hostname host_uuid -- "$VMFS" hosts --json "$MP")" \
	"0 live $(hostname) $uuid"
expect_eq "hosts --no-watch while mounted" \
	"$(json_rows hosts slot state liveness -- "$VMFS" hosts --no-watch --json "$LUN")" \
	"0 active unknown"
# What the mount itself holds alone: the volume lock, exclusive.
expect_eq "locks of the mount alone" \
	"$(json_rows locks kind mode -- "$VMFS" locks --json "$LUN")" \
	"heartbeat_region exclusive"

step "locks of a host that left: listed with paths, stale"
# Files written home by an unmount, so that the read-only walk of the
# tree (what is on the LUN, not the live host's newest changes) names them.
mkdir "$MP/vms"
echo a >"$MP/vms/a.vmdk"
echo b >"$MP/vms/b.vmdk"
t_umount "$MP"
t_mount "$LUN" "$MP"
ino_a=$(stat -c %i "$MP/vms/a.vmdk")
ino_b=$(stat -c %i "$MP/vms/b.vmdk")
"$LOCKHOLD" --name gone-host --exit "$LUN" "ino:$ino_a=ex" jnl:3=ex rc:0:0=ex \
	>"$T_DIR/gone.out" || fail "lockhold --exit failed"
gone_uuid=$(awk '{print $5}' "$T_DIR/gone.out")
expect_eq "locks of a host that left" \
	"$(json_rows locks kind mode -- "$VMFS" locks --json "$LUN" | tr '\n' ' ')" \
	"heartbeat_region exclusive journal exclusive cluster exclusive inode exclusive "
expect_eq "locks of the mount point" \
	"$(json_rows locks kind mode -- "$VMFS" locks --json "$MP" | tr '\n' ' ')" \
	"heartbeat_region exclusive journal exclusive cluster exclusive inode exclusive "
"$VMFS" locks --json "$LUN" | python3 -c '
import json, sys
ino, uuid = int(sys.argv[1]), sys.argv[2]
d = json.load(sys.stdin)
inode = [l for l in d["locks"] if l["kind"] == "inode"]
assert len(inode) == 1 and inode[0]["ino"] == ino, inode
assert inode[0]["path"] == "/vms/a.vmdk", inode[0]["path"]
for l in d["locks"]:
    if l["kind"] == "heartbeat_region":
        continue      # the volume lock of the mounted host
    (h,) = l["holders"]
    assert h["host_uuid"] == uuid and h["stale"] and h["hostname"] is None, h
    assert "is free" in h["stale_reason"], h
' "$ino_a" "$gone_uuid" || fail "locks --json of the host that left"
out=$("$VMFS" locks "$LUN")
grep -q "inode $ino_a /vms/a.vmdk: exclusive" <<<"$out" || fail "locks text: $out"
grep -q "stale (slot 1 is free); a survivor may break it" <<<"$out" ||
	fail "locks text lacks the stale holder: $out"

step "locks of a live host; --path and --host filter"
coproc HOLD { exec "$LOCKHOLD" --name live-host "$LUN" "ino:$ino_b=ro"; }
T_PIDS+=("$HOLD_PID")
read -r -t 20 ready <&"${HOLD[0]}" || fail "lockhold did not get ready"
live_slot=$(awk '{print $3}' <<<"$ready")
live_uuid=$(awk '{print $5}' <<<"$ready")
expect_eq "--path of the live host's file" \
	"$(json_rows locks ino path mode -- "$VMFS" locks --json --path /vms/b.vmdk "$LUN")" \
	"$ino_b /vms/b.vmdk read-only"
expect_eq "--path of the stale host's file" \
	"$(json_rows locks ino mode -- "$VMFS" locks --json --path vms/a.vmdk "$LUN")" \
	"$ino_a exclusive"
expect_eq "--path of a file nobody locks" \
	"$(json_rows locks ino -- "$VMFS" locks --json --path /vms "$LUN")" ""
# Through the mount point: found through the mount; a path that leads
# out of the volume, or to nothing, is refused.
expect_eq "--path of the live host's file through the mount" \
	"$(json_rows locks ino path mode -- "$VMFS" locks --json --path /vms/b.vmdk "$MP")" \
	"$ino_b /vms/b.vmdk read-only"
expect_fail 1 "no file /nope on the volume mounted at" \
	"$VMFS" locks --path /nope "$MP"
expect_fail 1 "no file /../../../../../../../../etc/passwd on the volume mounted at" \
	"$VMFS" locks --path /../../../../../../../../etc/passwd "$MP"
for h in live-host "$live_uuid" "$live_slot"; do
	expect_eq "--host $h" \
		"$(json_rows locks kind -- "$VMFS" locks --json --host "$h" "$LUN" | sort | tr '\n' ' ')" \
		"inode "
done
expect_eq "--host of the host that left, by UUID" \
	"$(json_rows locks kind -- "$VMFS" locks --json --host "$gone_uuid" "$LUN" | sort | tr '\n' ' ')" \
	"cluster inode journal "
expect_eq "--host nobody" \
	"$(json_rows locks kind -- "$VMFS" locks --json --host no-such-host "$LUN")" ""
out=$("$VMFS" locks --host live-host "$LUN")
grep -q "holder live-host, uuid $live_uuid, slot $live_slot" <<<"$out" ||
	fail "locks --host text: $out"
expect_eq "hosts with the test host" \
	"$(json_rows hosts slot state hostname -- "$VMFS" hosts --json "$LUN" | tr '\n' ' ')" \
	"0 live $(hostname) $live_slot live live-host "
kill -TERM "$HOLD_PID"
wait "$HOLD_PID" || fail "lockhold did not release and leave cleanly"
expect_eq "the live host's locks after it released them" \
	"$(json_rows locks kind -- "$VMFS" locks --json --host live-host "$LUN")" ""

step "a file just created and fsync'ed: its lock is found (journal or home)"
echo c >"$MP/vms/c.vmdk"
sync "$MP/vms/c.vmdk"
ino_c=$(stat -c %i "$MP/vms/c.vmdk")
"$LOCKHOLD" --name fresh-host --exit "$LUN" "ino:$ino_c=mw" >/dev/null ||
	fail "lockhold on the fresh file failed"
expect_eq "lock of the fresh file" \
	"$(json_rows locks ino mode -- "$VMFS" locks --json "$LUN" | grep "^$ino_c ")" \
	"$ino_c multi-writer"

step "kill -9 of vmfsd: the host shows dead, with its journal state"
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
t_kill_vmfsd "$pid" "$MP"
# The text and the JSON form watch at the same time: a lease each.
"$VMFS" hosts "$LUN" >"$T_DIR/hosts.txt" &
text_pid=$!
"$VMFS" hosts --json "$LUN" >"$T_DIR/hosts.json"
wait "$text_pid" || fail "vmfs hosts (text) after kill -9 failed"
row=$(json_rows hosts slot state liveness -- cat "$T_DIR/hosts.json")
expect_eq "hosts after kill -9" "$row" "0 dead dead"
python3 -c '
import json, sys
(h,) = json.load(sys.stdin)["hosts"]
j = h["journal"]
assert j["state"] in ("dirty", "clean"), j
assert h["still_for_at_least_ms"] >= h["lease_ms"], h
' <"$T_DIR/hosts.json" || fail "hosts --json after kill -9"
out=$(cat "$T_DIR/hosts.txt")
grep -qE "^0 +dead +$(hostname) .*>= [0-9.]+ s .*(clean|dirty)" <<<"$out" ||
	fail "hosts text after kill -9: $out"
t_log "ok"
