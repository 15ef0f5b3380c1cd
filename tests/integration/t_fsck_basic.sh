#!/usr/bin/env bash
#
# t_fsck_basic: `vmfs fsck` on a volume with every kind of content the
# engine makes is clean in -n and -y; it refuses to repair while a host
# has the volume mounted (naming that host, and printing no summary that
# could read as a clean result) but checks it with -n; --json prints a
# JSON error object for a LUN it cannot open; and a
# bitmap bit set by hand (a leaked file block) is found by -n (exit 4),
# repaired by -p / -y (exit 1) and gone afterwards (exit 0).
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt

# fsck_rc WANT ARGS...: run vmfs fsck, its exit status must be WANT.
fsck_rc() {
	local want=$1 rc=0
	shift
	"$VMFS" fsck "$@" >"$T_DIR/fsck.out" 2>"$T_DIR/fsck.err" || rc=$?
	if [[ $rc != "$want" ]]; then
		cat "$T_DIR/fsck.out" "$T_DIR/fsck.err" >&2
		fail "vmfs fsck $* exited $rc, expected $want"
	fi
}

step "mkfs, mount, make content"
make_lun "$LUN" 2G
t_mkfs "$LUN" --label fsck-basic --max-hosts 8
t_mount "$LUN" "$MP"
mkdir -p "$MP/a/b/c" "$MP/d/e"
head -c 100 /dev/urandom >"$MP/a/inline"
head -c 2048 /dev/urandom >"$MP/a/inline-max"
head -c $((200 * 1024 + 7)) /dev/urandom >"$MP/a/b/small"
head -c $((5 * 1024 * 1024 + 3)) /dev/urandom >"$MP/big"
: >"$MP/empty"
dd if=/dev/urandom of="$MP/sparse" bs=4k count=1 seek=$((300 * 256)) status=none
ln "$MP/big" "$MP/d/big-link"
ln "$MP/a/inline" "$MP/d/e/inline-link"
ln -s ../big "$MP/a/sym"
ln -s "$(printf 'x%.0s' {1..3000})" "$MP/longsym"
setfattr -n user.color -v blue "$MP/a/inline"
setfattr -n user.dir -v d "$MP/a"
mkfifo "$MP/fifo"
for i in $(seq 1 50); do echo "$i" >"$MP/d/f$i"; done
rm "$MP/d/f7" "$MP/d/f8"
"$VMFS" disk create --size 64M --type thin "$MP/thin.vmdk"
"$VMFS" disk create --size 32M --type zeroedthick "$MP/zeroed.vmdk"
"$VMFS" disk create --size 16M --type eagerzeroedthick "$MP/eager.vmdk"
dd if=/dev/urandom of="$MP/thin.vmdk" bs=1M count=1 seek=40 conv=notrunc status=none
dd if=/dev/urandom of="$MP/zeroed.vmdk" bs=64k count=3 seek=5 conv=notrunc status=none
sha_before=$(cd "$MP" && find . -type f ! -name fifo -print0 | LC_ALL=C sort -z |
	xargs -0 sha256sum | sha256sum)

step "fsck -n on the mounted volume works and warns"
fsck_rc 0 -n "$LUN"
grep -qi "mounted by a live host" "$T_DIR/fsck.err" ||
	fail "fsck -n on a mounted volume did not warn: $(cat "$T_DIR/fsck.err")"

step "fsck -y refuses while the volume is mounted, naming the host"
fsck_rc 8 -y "$LUN"
grep -qiE "slot [0-9]+ \(host $(hostname)" "$T_DIR/fsck.err" ||
	fail "refusal does not name the live host: $(cat "$T_DIR/fsck.err")"
grep -q "pass --force" "$T_DIR/fsck.err" ||
	fail "refusal does not mention --force: $(cat "$T_DIR/fsck.err")"
# Only why it refused: a "0 problems found" summary reads as clean.
[[ ! -s $T_DIR/fsck.out ]] || fail "the refusal printed a summary: $(cat "$T_DIR/fsck.out")"
t_umount "$MP"

step "fsck -n and -y on the unmounted volume are clean"
fsck_rc 0 -n "$LUN"
grep -q " 0 problems found" "$T_DIR/fsck.out" || fail "summary: $(cat "$T_DIR/fsck.out")"
fsck_rc 0 -y --progress "$LUN"
grep -q "^pass 6: bitmaps" "$T_DIR/fsck.err" || fail "no progress lines: $(cat "$T_DIR/fsck.err")"
fsck_rc 0 -n --json --mem-limit 4K "$LUN"
python3 - "$T_DIR/fsck.out" <<'EOF' || fail "bad --json output: $(cat "$T_DIR/fsck.out")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["exit_code"] == 0 and j["problems"] == [], j
assert j["counts"]["inodes"] >= 60 and j["counts"]["spilled_entries"] > 0, j
EOF

step "a leaked file block: -n finds it, -y repairs it, -n is clean"
"$VMFS" info --json "$LUN" >"$T_DIR/info.json"
python3 - "$LUN" "$T_DIR/info.json" <<'EOF' || fail "could not set a bitmap bit"
import json, struct, sys
POLY = 0x82F63B78
tab = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    tab.append(c)
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c = tab[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff
info = json.load(open(sys.argv[2]))
off = info["areas"]["file_blocks"]["header_offset"]   # cluster 0
with open(sys.argv[1], "r+b") as f:
    f.seek(off)
    blk = bytearray(f.read(4096))
    rc = 512                                          # struct vmfs_rc
    nobjs, nfree = struct.unpack_from("<II", blk, rc + 0x28)
    bm = rc + 0x40
    for j in range(nobjs - 1, -1, -1):                # the last free object
        if not blk[bm + j // 8] & (1 << (j % 8)):
            blk[bm + j // 8] |= 1 << (j % 8)
            break
    else:
        sys.exit("cluster 0 is full")
    struct.pack_into("<I", blk, rc + 0x2c, nfree - 1)
    struct.pack_into("<I", blk, rc + 0x18, 0)
    struct.pack_into("<I", blk, rc + 0x18, crc32c(bytes(blk[rc:rc + 3584])))
    f.seek(off)
    f.write(blk)
EOF
fsck_rc 4 -n "$LUN"
grep -q "^PR_6_LEAKED: .* NOT fixed" "$T_DIR/fsck.out" ||
	fail "-n did not report the leak: $(cat "$T_DIR/fsck.out")"
cp --sparse=always "$LUN" "$T_DIR/lun.leaked"
fsck_rc 1 -y "$LUN"
grep -q "^PR_6_LEAKED: .* fixed" "$T_DIR/fsck.out" ||
	fail "-y did not fix the leak: $(cat "$T_DIR/fsck.out")"
fsck_rc 0 -n "$LUN"
# Preen may fix a leak unasked too.
fsck_rc 1 -p "$T_DIR/lun.leaked"
fsck_rc 0 -n "$T_DIR/lun.leaked"
rm -f "$T_DIR/lun.leaked"

step "the repaired volume mounts with the same data"
t_mount "$LUN" "$MP"
sha_after=$(cd "$MP" && find . -type f ! -name fifo -print0 | LC_ALL=C sort -z |
	xargs -0 sha256sum | sha256sum)
expect_eq "content after fsck" "$sha_after" "$sha_before"
t_umount "$MP"

step "usage errors and a LUN that is not a volume"
fsck_rc 16 -n -y "$LUN"
make_lun "$T_DIR/blank" 64M
fsck_rc 8 -n "$T_DIR/blank"
grep -q "PR_0_NOT_VOLUME" "$T_DIR/fsck.out" || fail "blank LUN: $(cat "$T_DIR/fsck.out")"
# --json prints its one object even when the LUN cannot be opened.
fsck_rc 8 -n --json "$T_DIR/no-such-lun"
python3 - "$T_DIR/fsck.out" <<'EOF' || fail "--json on a missing LUN: $(cat "$T_DIR/fsck.out" "$T_DIR/fsck.err")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["exit_code"] == 8 and j["problems"] == [], j
assert "cannot open LUN" in j["error"] and "no-such-lun" in j["error"], j
EOF

t_log "PASS"
