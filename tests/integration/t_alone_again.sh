#!/usr/bin/env bash
#
# t_alone_again: a host that becomes alone on the volume lets go of the
# per-object locks it still held on disk (docs/PROTOCOL.md §2, going
# alone), so nothing it closed or freed while alone stays locked:
#
#  - A and B share the volume; A opens a file for writing (its open lock
#    is on disk); B unmounts and A works alone again; A closes the file,
#    removes it and creates others (the freed inode slot is used again);
#  - B mounts again: it opens every file A made for writing, and `vmfs
#    locks` shows no lock of A's left behind;
#  - fsck -n is clean.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun

humount() {
	"$VMFS" umount --state-dir "$(state_of "$1")" "$(mp_of "$1")" ||
		fail "host $1: vmfs umount failed"
}


step "A and B share the volume; A holds a file open for writing"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 4M
hmount A
hmount B
a=$(mp_of A)
b=$(mp_of B)
mkdir "$a/d"
echo held >"$a/d/held"
exec 7>>"$a/d/held"
# Through A's vmfsd: A keeps its locks between operations (asks on the
# disk), so the new directory and file may not be home on the LUN yet,
# and `vmfs locks LUN` resolves paths from the LUN alone.
"$VMFS" locks --path /d/held "$a" >"$T_DIR/locks1.txt"
grep -q "owner A" "$T_DIR/locks1.txt" ||
	fail "A's open lock is not on disk while shared: $(cat "$T_DIR/locks1.txt")"

step "B leaves; A, alone, closes the file, removes it and makes others"
humount B
alone_again A 1
exec 7>&-
rm "$a/d/held"
for i in 1 2 3 4 5 6 7 8; do
	echo "f$i" >"$a/d/f$i"
done
sync "$a/d"

step "B mounts again and opens everything A made for writing"
hmount B
for i in 1 2 3 4 5 6 7 8; do
	(exec 9>>"$b/d/f$i") 2>"$T_DIR/open.err" ||
		fail "B cannot open f$i for writing: $(cat "$T_DIR/open.err"); $(tail -n 2 "$(log_of B)")"
done
"$VMFS" locks "$LUN" >"$T_DIR/locks2.txt"
if grep -q "owner A" "$T_DIR/locks2.txt"; then
	fail "a lock of A's is left on disk after A went alone: $(cat "$T_DIR/locks2.txt")"
fi
t_log "B opened the 8 files A made while alone; no lock of A's left behind"

step "unmount; fsck -n is clean"
humount B
humount A
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n: $(tail -n 5 "$T_DIR/fsck.out")"
echo "t_alone_again: ok"
