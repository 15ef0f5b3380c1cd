#!/usr/bin/env bash
#
# t_journal: `vmfs journal dump|replay`, the journals table of `vmfs info`
# and fsck's view of a crashed journal, through a real mount.
#
#   - a fresh volume: every journal clean, dump shows no transaction,
#     info lists each slot; bad command lines exit 2 naming the culprit,
#     a LUN that is not a volume exits 1;
#   - mount, write, umount: clean again, fsck -n clean;
#   - mounted (commits only when asked: --commit-ms 60000): the live
#     host's journal is dirty in info; fsync'ed files make a committed
#     transaction; `journal replay` refuses, naming the live slot, and
#     fsck -n reads the live host's journal through (exit 0);
#   - kill -9 of vmfsd: info shows the slot dirty with transactions
#     pending, dump --blocks lists the inodes and chunks they hold, fsck -n
#     reads through them, says a mount will replay them and exits 0: the
#     dead host's stale heartbeat slot is a note, not a problem (on a copy
#     with that host's journal header damaged it is one, and exit is 4);
#   - `journal replay` (it watches the dead host's heartbeat for a lease
#     first): the transactions go home, the journal is clean, the files
#     are there after a mount, and fsck -n is clean after the umount.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt

# journals FIELD...: one line per slot of `vmfs info --json`'s "journals".
journals() {
	t_info_rows "$LUN" journals "$@"
}

# slot0 FIELD...: the same for slot 0 only.
slot0() {
	journals slot "$@" | sed -n 's/^0 //p'
}

step "mkfs: every journal clean"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
"$VMFS" journal dump "$LUN" >"$T_DIR/dump" || fail "journal dump of a fresh volume failed"
expect_eq "clean slots in the dump" "$(grep -c '^slot [0-3]: clean, tail 0x1000, head 0x1000, seq 1' "$T_DIR/dump")" 4
expect_eq "transactions in the dump" "$(grep -c '^  0 transactions (0 images); stopped at 0x1000, sequence 1: end of the log' "$T_DIR/dump")" 4
"$VMFS" info "$LUN" >"$T_DIR/info" || fail "vmfs info failed"
grep -qE '^journals +state +tail +head +seq +pending replay' "$T_DIR/info" ||
	fail "vmfs info has no journals table: $(cat "$T_DIR/info")"
grep -qE '^  all 4 slots clean: nothing to replay$' "$T_DIR/info" ||
	fail "vmfs info does not sum up the clean journals: $(cat "$T_DIR/info")"
expect_eq "info --json journals" "$(journals slot state pending_transactions stop | tr '\n' ' ')" \
	"0 clean 0 clean 1 clean 0 clean 2 clean 0 clean 3 clean 0 clean "
"$VMFS" journal dump --slot 2 --json --blocks "$LUN" | python3 -c '
import json, sys
d = json.load(sys.stdin)
j, = d["journals"]
assert j["slot"] == 2 and j["state"] == "clean" and j["transactions"] == [], j
assert j["stop"] == "end" and j["ntxn"] == 0, j' || fail "journal dump --json of slot 2"

step "bad command lines"
expect_fail 2 "missing subcommand" "$VMFS" journal
expect_fail 2 "unknown subcommand 'frob'" "$VMFS" journal frob "$LUN"
expect_fail 2 "unknown option '--bogus'" "$VMFS" journal dump --bogus "$LUN"
grep -q "see 'vmfs journal dump --help'" "$T_DIR/err" || fail "no --help hint: $(cat "$T_DIR/err")"
expect_fail 2 "missing LUN" "$VMFS" journal dump
expect_fail 2 "unexpected argument" "$VMFS" journal dump "$LUN" "$LUN"
expect_fail 2 "'--slot' needs a value" "$VMFS" journal dump "$LUN" --slot
expect_fail 2 "--slot x: must be a heartbeat slot number" "$VMFS" journal dump --slot x "$LUN"
expect_fail 2 "--slot 4: .* has 4 heartbeat slots \(0-3\)" "$VMFS" journal dump --slot 4 "$LUN"
expect_fail 2 "--slot 9: .* has 4 heartbeat slots" "$VMFS" journal replay --slot 9 "$LUN"
expect_fail 2 "--slot and --all exclude each other" "$VMFS" journal dump --slot 1 --all "$LUN"
expect_fail 2 "'--blocks' is only for 'vmfs journal dump'" "$VMFS" journal replay --blocks "$LUN"
expect_fail 2 "'--force' is only for 'vmfs journal replay'" "$VMFS" journal dump --force "$LUN"
expect_fail 1 "cannot open LUN" "$VMFS" journal dump "$T_DIR/nonexistent"
truncate -s 64M "$T_DIR/blank"
expect_fail 1 "is not a vmfs volume" "$VMFS" journal dump "$T_DIR/blank"
expect_fail 1 "is not a vmfs volume" "$VMFS" journal replay "$T_DIR/blank"
for sub in "" " dump" " replay"; do
	# shellcheck disable=SC2086
	"$VMFS" journal$sub --help >"$T_DIR/out" || fail "vmfs journal$sub --help failed"
	grep -q "usage: vmfs journal" "$T_DIR/out" || fail "vmfs journal$sub --help prints no usage"
done
"$VMFS" --help | grep -qE '^  journal +show or replay' || fail "vmfs --help does not list journal"

step "mount, write, umount: clean"
t_mount "$LUN" "$MP"
mkdir "$MP/a"
echo hello >"$MP/a/f"
t_umount "$MP"
expect_eq "journals after umount" "$(journals state pending_transactions | sort -u)" "clean 0"
"$VMFS" journal dump "$LUN" >"$T_DIR/dump" || fail "journal dump failed"
expect_eq "transactions after umount" "$(grep -c '^  0 transactions' "$T_DIR/dump")" 4
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after umount: $(cat "$T_DIR/fsck")"

step "mounted: the live host's journal is dirty, replay is refused"
t_mount "$LUN" "$MP" --commit-ms 60000
expect_eq "slot 0 while mounted" "$(slot0 state)" "dirty"
mkdir -p "$MP/d/e"
head -c 300000 /dev/urandom >"$MP/d/data.bin"
echo "journaled" >"$MP/d/e/small.txt"
ln -s d/data.bin "$MP/link"
sum_data=$(md5sum <"$MP/d/data.bin")
# fsync of each file and of the directories commits the transaction.
sync "$MP/d/data.bin" "$MP/d/e/small.txt" "$MP/d/e" "$MP/d" "$MP"
read -r ntxn nblk < <(slot0 pending_transactions pending_blocks)
((ntxn >= 1 && nblk >= 4)) ||
	fail "after fsync, slot 0 has $ntxn transactions ($nblk blocks) pending; want at least 1 (4)"
expect_fail 1 "heartbeat slot 0 \\(host [^,]+, uuid [0-9a-f-]+\\) is live: that host has .* mounted" \
	"$VMFS" journal replay "$LUN"
grep -q -- "--force" "$T_DIR/err" || fail "the refusal does not mention --force: $(cat "$T_DIR/err")"
# fsck -n reads the live host's journal too (nothing else writes now).
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n of the mounted volume: $(cat "$T_DIR/fsck")"
grep -q "slot 0 (live host [^)]*): its journal holds $ntxn committed transactions\? ($nblk blocks\?) that may not all be written home yet" "$T_DIR/fsck" ||
	fail "fsck -n does not say it reads the live host's journal: $(cat "$T_DIR/fsck")"

step "kill -9 of vmfsd: the journal stays dirty with the transactions"
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
t_kill_vmfsd "$pid" "$MP"
read -r state ntxn nblk < <(slot0 state pending_transactions pending_blocks)
expect_eq "slot 0 after the crash" "$state" "dirty"
((ntxn >= 1)) || fail "slot 0 holds $ntxn transactions after the crash"
"$VMFS" info "$LUN" | grep -qE "^  slot 0 +dirty .* $ntxn transactions? \\($nblk blocks?\\)$" ||
	fail "vmfs info does not show slot 0 dirty with $ntxn pending: $("$VMFS" info "$LUN" | grep -A5 '^journals')"
"$VMFS" journal dump --slot 0 --blocks "$LUN" >"$T_DIR/dump" || fail "journal dump --blocks failed"
grep -qE '^slot 0: dirty, ' "$T_DIR/dump" || fail "dump: slot 0 not dirty: $(cat "$T_DIR/dump")"
expect_eq "transactions in the dump" "$(grep -cE '^  transaction [0-9]+ at 0x' "$T_DIR/dump")" "$ntxn"
grep -qE '^    0x[0-9a-f]{16}  lockable  inode [0-9]+$' "$T_DIR/dump" ||
	fail "dump --blocks lists no inode: $(cat "$T_DIR/dump")"
grep -qE '^    0x[0-9a-f]{16}  -         directory chunk 0 of inode [0-9]+' "$T_DIR/dump" ||
	fail "dump --blocks lists no directory chunk: $(cat "$T_DIR/dump")"
grep -q "(does not verify)" "$T_DIR/dump" && fail "dump: a journaled image does not verify: $(cat "$T_DIR/dump")"
"$VMFS" journal dump --slot 0 --blocks --json "$LUN" | python3 -c '
import json, sys
j, = json.load(sys.stdin)["journals"]
assert j["state"] == "dirty" and j["ntxn"] == int(sys.argv[1]), j
assert all(b["verifies"] for t in j["transactions"] for b in t["blocks"]), j
kinds = {b["kind"] for t in j["transactions"] for b in t["blocks"]}
assert {"inode", "directory_chunk"} <= kinds, kinds' "$ntxn" ||
	fail "journal dump --json --blocks after the crash"

step "fsck -n reads through the journal; the dead host's slot is a note"
# A copy with slot 0's journal header damaged: the dead host's journal
# cannot be replayed, so there its stale slot is a problem left (exit 4).
# Each run watches the dead slot for a lease: the three run at once.
cp --sparse=always "$LUN" "$T_DIR/badjnl.lun"
joff=$("$VMFS" info --json "$LUN" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["areas"]["journals"]["offset"])')
printf 'damage!!' | dd of="$T_DIR/badjnl.lun" bs=1 seek=$((joff + 512 + 64)) \
	conv=notrunc status=none
"$VMFS" fsck -n "$T_DIR/badjnl.lun" >"$T_DIR/bad.out" 2>&1 &
bad_pid=$!
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 &
txt_pid=$!
rc=0
"$VMFS" fsck -n --json "$LUN" >"$T_DIR/fsck.json" 2>"$T_DIR/fsck.err" || rc=$?
python3 - "$T_DIR/fsck.json" "$rc" <<'EOF' || fail "fsck -n of the crashed volume: $(cat "$T_DIR/fsck.err" "$T_DIR/fsck.json")"
import json, sys
j = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
codes = {p["code"] for p in j["problems"]}
# The dead host's heartbeat slot stays active until it mounts again: with
# its journal replayable, that is a note, not a problem left (exit 0); so
# is the volume lock it held (alone), which the next host breaks.
assert not codes and rc == 0, (rc, codes)
notes = dict((n["code"], n["detail"]) for n in j["notes"])
assert sorted(notes) == ["PR_1_HB_SLOT_STALE", "PR_1_LOCK_STALE"], notes
assert "slot 0:" in notes["PR_1_HB_SLOT_STALE"], notes
assert "replayable" in notes["PR_1_HB_SLOT_STALE"], notes
assert "heartbeat region header" in notes["PR_1_LOCK_STALE"], notes
assert j["counts"]["notes"] == 2 and j["counts"]["found"] == 0, j["counts"]
EOF
wait "$txt_pid" || fail "fsck -n (text) of the crashed volume: $(cat "$T_DIR/fsck.out")"
grep -qE "^PR_1_HB_SLOT_STALE: .*slot 0: .* note \(information, not an error\)$" "$T_DIR/fsck.out" ||
	fail "fsck -n does not print the stale slot as a note: $(cat "$T_DIR/fsck.out")"
grep -qE ": 0 problems found, 0 fixed, 0 left, 2 notes; " "$T_DIR/fsck.out" ||
	fail "fsck -n summary: $(cat "$T_DIR/fsck.out")"
rc=0
wait "$bad_pid" || rc=$?
expect_eq "fsck -n exit with the dead host's journal damaged" "$rc" 4
grep -qE "^PR_2_JOURNAL_BAD: .*slot 0 .* NOT fixed$" "$T_DIR/bad.out" ||
	fail "damaged journal not reported: $(cat "$T_DIR/bad.out")"
grep -qE "^PR_1_HB_SLOT_STALE: .*slot 0: .*cannot be replayed .* NOT fixed$" "$T_DIR/bad.out" ||
	fail "the stale slot with a damaged journal is not a problem: $(cat "$T_DIR/bad.out")"
grep -q "slot 0: its journal holds $ntxn committed transactions\? ($nblk blocks\?) that a mount or 'vmfs fsck -y' will replay" "$T_DIR/fsck.err" ||
	fail "fsck -n does not say what a mount will replay: $(cat "$T_DIR/fsck.err")"
expect_eq "fsck -n wrote nothing" "$(slot0 state pending_transactions)" "dirty $ntxn"

step "journal replay, once the dead host's heartbeat is seen still"
"$VMFS" journal replay "$LUN" >"$T_DIR/replay" 2>"$T_DIR/replay.err" ||
	fail "journal replay failed: $(cat "$T_DIR/replay.err")"
grep -q "watching for" "$T_DIR/replay.err" || fail "replay did not say why it waits: $(cat "$T_DIR/replay.err")"
grep -qE "^slot 0: replayed $ntxn transactions? \\($nblk blocks?\\); journal marked clean$" "$T_DIR/replay" ||
	fail "replay output: $(cat "$T_DIR/replay")"
expect_eq "clean slots after replay" "$(grep -c 'clean, nothing to replay' "$T_DIR/replay")" 3
expect_eq "journals after replay" "$(journals state pending_transactions | sort -u)" "clean 0"
"$VMFS" journal replay --slot 0 --force "$LUN" >"$T_DIR/replay" 2>&1 || fail "second replay failed"
expect_eq "second replay" "$(cat "$T_DIR/replay")" "slot 0: clean, nothing to replay"

step "the files are there"
t_mount "$LUN" "$MP"
expect_eq "small.txt" "$(cat "$MP/d/e/small.txt")" "journaled"
expect_eq "data.bin" "$(md5sum <"$MP/d/data.bin")" "$sum_data"
expect_eq "link" "$(readlink "$MP/link")" "d/data.bin"
expect_eq "earlier file" "$(cat "$MP/a/f")" "hello"
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n at the end: $(cat "$T_DIR/fsck")"
t_log "ok"
