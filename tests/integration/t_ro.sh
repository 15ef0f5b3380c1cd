#!/usr/bin/env bash
#
# t_ro: read-only mounts (docs/OPERATIONS.md, "Read-only mounts").
#
#   - `vmfs mount --ro`: files read back with the checksums they were
#     written with; every kind of write (create, write, truncate, mkdir,
#     rename, unlink, chmod/chown/utimes, xattr, fallocate) fails with
#     EROFS; `vmfs info MOUNTPOINT` says read-only;
#   - the promise: a read-only mount writes nothing to the LUN but its
#     heartbeat slot's block and the volume lock's sector (the LUN hashed
#     without them is the same before the mount and after the unmount);
#   - a second mount of the volume while the read-only one stands, by the
#     same host or by a read-write host (another state directory), is
#     refused: read-only hosts take no per-object locks;
#   - a journal with transactions to replay: the read-only mount is
#     refused, says how to replay, and leaves the LUN byte for byte as it
#     was (it checks before it takes a slot); after `vmfs journal replay`
#     it mounts.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
MP2=$T_DIR/mnt2
STATE2=$T_DIR/state2

# lun_hash LUN SLOT: sha256 of the LUN without heartbeat slot SLOT's
# block and the volume lock record (the first sector of the heartbeat
# region): what a read-only host writes.
lun_hash() {
	"$VMFS" info --json "$1" | python3 -c '
import hashlib, json, sys
hb = json.load(sys.stdin)["areas"]["heartbeat"]["offset"]
slot = hb + 4096 + int(sys.argv[2]) * 4096
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    h.update(f.read(hb))
    f.seek(hb + 512)
    h.update(f.read(slot - hb - 512))
    f.seek(slot + 4096)
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        h.update(b)
print(h.hexdigest())' "$1" "$2"
}

# info_field MP KEY: a field of `vmfs info --json MP` (dotted path).
info_field() {
	"$VMFS" info --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(str(v).lower() if isinstance(v, bool) else v)' "$2"
}

step "mkfs and fill the volume read-write"
make_lun "$LUN" 256M
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
t_mount "$LUN" "$MP"
mkdir -p "$MP/dir/sub"
head -c 3000000 /dev/urandom >"$MP/dir/big"
head -c 5000 /dev/urandom >"$MP/small"
echo hello >"$MP/dir/sub/hello"
ln -s dir/big "$MP/link"
setfattr -n user.color -v blue "$MP/small"
(cd "$MP" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T_DIR/sums"
t_umount "$MP"
before=$(lun_hash "$LUN" 0)

step "vmfs mount --ro: reads give what was written"
t_mount "$LUN" "$MP" --ro
(cd "$MP" && sha256sum --quiet -c "$T_DIR/sums") || fail "checksums differ under --ro"
expect_eq "symlink" "$(readlink "$MP/link")" "dir/big"
expect_eq "xattr" "$(getfattr --absolute-names --only-values -n user.color "$MP/small")" "blue"
ls -laR "$MP" >/dev/null
grep -qs " $MP fuse.vmfs ro[,]" /proc/self/mounts ||
	fail "the FUSE mount is not 'ro': $(grep " $MP " /proc/self/mounts)"
expect_eq "info read_only" "$(info_field "$MP" vmfsd.read_only)" "true"
"$VMFS" info "$MP" | grep -q "^mounted at .* read-only (vmfsd pid" ||
	fail "vmfs info does not say read-only: $("$VMFS" info "$MP" | grep '^mounted at')"
slot=$(info_field "$MP" vmfsd.heartbeat.slot)
expect_eq "heartbeat slot" "$slot" 0
"$VMFS" info "$LUN" | grep -qE "^  slot 0 " || fail "no heartbeat slot claimed"

step "every kind of write fails with EROFS"
python3 - "$MP" <<'EOF' || fail "a write did not fail with EROFS"
import errno, os, sys
mp = sys.argv[1]
p = lambda *a: os.path.join(mp, *a)
def wr(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
def falloc(path):
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 1 << 20)
    finally:
        os.close(fd)
ops = {
    "create": lambda: os.close(os.open(p("new"), os.O_CREAT | os.O_WRONLY, 0o644)),
    "write": lambda: wr(p("small"), b"x"),
    "truncate": lambda: os.truncate(p("small"), 0),
    "mkdir": lambda: os.mkdir(p("newdir")),
    "rename": lambda: os.rename(p("small"), p("small2")),
    "unlink": lambda: os.unlink(p("small")),
    "rmdir": lambda: os.rmdir(p("dir", "sub")),
    "symlink": lambda: os.symlink("small", p("sl")),
    "link": lambda: os.link(p("small"), p("hard")),
    "chmod": lambda: os.chmod(p("small"), 0o600),
    "chown": lambda: os.chown(p("small"), 1, 1),
    "utimes": lambda: os.utime(p("small"), (1, 1)),
    "setxattr": lambda: os.setxattr(p("small"), "user.x", b"1"),
    "removexattr": lambda: os.removexattr(p("small"), "user.color"),
    "fallocate": lambda: falloc(p("small")),
    "mknod": lambda: os.mkfifo(p("fifo")),
}
bad = []
for name, op in ops.items():
    try:
        op()
        bad.append(name + ": succeeded")
    except OSError as e:
        if e.errno != errno.EROFS:
            bad.append("%s: %s" % (name, os.strerror(e.errno)))
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
(cd "$MP" && sha256sum --quiet -c "$T_DIR/sums") || fail "checksums changed after the refused writes"

step "a second mount is refused: same host, and another host"
mkdir -p "$MP2"
expect_fail 1 "already mounted at .* by this host" \
	"$VMFS" mount --state-dir "$T_STATE" "$LUN" "$MP2"
expect_fail 1 "already mounted at .* by this host" \
	"$VMFS" mount --ro --state-dir "$T_STATE" "$LUN" "$MP2"
mkdir -p "$STATE2"
expect_fail 1 "is mounted read-only by host .*read-write hosts cannot share it" \
	"$VMFS" mount --state-dir "$STATE2" "$LUN" "$MP2"
! mountpoint -q "$MP2" || fail "the second mount mounted $MP2"

step "the read-only mount wrote nothing but its heartbeat slot and volume lock"
sleep 1         # a few renewals of the slot
t_umount "$MP"
expect_eq "LUN hash outside slot $slot" "$(lun_hash "$LUN" "$slot")" "$before"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || fail "fsck -n after --ro: $(cat "$T_DIR/fsck.out")"

step "a journal to replay: --ro is refused with what to do"
# A long commit interval: the fsync commits, nothing checkpoints before
# the kill, so the journal holds a transaction to replay.
t_mount "$LUN" "$MP" --commit-ms 60000
echo more >"$MP/more"
sync "$MP/more" "$MP"
pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)")
t_kill_vmfsd "$pid" "$MP"
read -r state ntxn < <(t_info_rows "$LUN" journals state pending_transactions | head -n 1)
[[ $state == dirty ]] && ((ntxn >= 1)) ||
	fail "the kill left slot 0 $state with $ntxn transactions; want dirty with some"
dirty=$(sha256sum <"$LUN")
expect_fail 1 "journal transactions to replay.*read-write once.*vmfs journal replay .*vmfs fsck -y" \
	"$VMFS" mount --ro --state-dir "$T_STATE" "$LUN" "$MP"
! mountpoint -q "$MP" || fail "--ro mounted a volume with a dirty journal"
# It refuses before it takes a heartbeat slot: not one byte changed.
expect_eq "the LUN after the refused --ro mount" "$(sha256sum <"$LUN")" "$dirty"
"$VMFS" journal replay "$LUN" >/dev/null
t_mount "$LUN" "$MP" --ro
expect_eq "the replayed file" "$(cat "$MP/more")" "more"
t_umount "$MP"

t_log "PASS"
