#!/usr/bin/env bash
#
# t_perms: another user gets what the modes, owners and sticky bits
# allow, no more, while the kernel keeps names and attributes (a host
# alone on its volume: fuse/kcache.c, up to 30 s).  The kernel checks
# permissions on the mount (default_permissions), with the attributes it
# keeps; a step of a path the kernel found in its own cache sends vmfsd
# nothing, so a mount whose permissions vmfsd checked itself would let
# anyone through a directory once root had looked inside
# (bench/RESULTS.md, twenty-fourth session).
#
# Every operation runs as uid/gid 65534 on the mount and on a reference
# directory on the host's own file system; both must give the same
# result, and that result is the one written in the step.
#
# both() runs its single-quoted commands with $D set.
# shellcheck disable=SC2016
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
REF=$T_DIR/ref
NOBODY=65534
# The system's python: one under root's home is not for other users.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
# The other user must reach the mount point and the reference.
chmod 755 "$T_DIR"
mkdir -p "$REF"

# as_other OP PATH [ARG]: OP as uid/gid 65534 with no supplementary
# groups; prints OK or the errno name.
as_other() {
	setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$PY" - "$@" <<'EOF'
import errno, os, sys
op, p = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
try:
    if op == "stat": os.stat(p)
    elif op == "read": open(p, "rb").read()
    elif op == "write": open(p, "ab").write(b"x")
    elif op == "ls": os.listdir(p)
    elif op == "create": os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif op == "unlink": os.unlink(p)
    elif op == "rename": os.rename(p, arg)
    elif op == "chmod": os.chmod(p, int(arg, 8))
    elif op == "chown": os.chown(p, int(arg), -1)
    elif op == "utime": os.utime(p, (1, 1))
    elif op == "touch": os.utime(p, None)
    elif op == "mkdir": os.mkdir(p)
    else: sys.exit("as_other: unknown op " + op)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
}

# expect_other RESULT OP NAME [ARG]: OP on NAME (and ARG, a name too for
# rename) as the other user, under the mount and under the reference.
expect_other() {
	local want=$1 op=$2 name=$3 ours ref
	shift 3
	local marg=() rarg=()
	if [[ $op == rename ]]; then
		marg=("$MP/$1")
		rarg=("$REF/$1")
	elif [[ $# -gt 0 ]]; then
		marg=("$1")
		rarg=("$1")
	fi
	ref=$(as_other "$op" "$REF/$name" "${rarg[@]}")
	ours=$(as_other "$op" "$MP/$name" "${marg[@]}")
	[[ $ref == "$want" ]] ||
		fail "$op $name ${marg[*]}: the reference file system says $ref, the test expects $want"
	[[ $ours == "$want" ]] ||
		fail "$op $name ${marg[*]} as uid $NOBODY: $ours on the mount, $want expected (as on the host's file system)"
}

# both CMD...: run a shell command (as root) with D set to the mount, then
# to the reference.
both() {
	local d
	for d in "$MP" "$REF"; do
		D=$d bash -c "$1" || fail "as root on $d: $1"
	done
}

# cached NAME: root looks NAME up and reads it, so the kernel keeps its
# name, the names leading to it and their attributes.
cached() {
	stat "$MP/$1" >/dev/null
	[[ -d $MP/$1 ]] || cat "$MP/$1" >/dev/null
}

step "mkfs and mount (alone: the kernel keeps names)"
make_lun "$LUN" 4G
t_mkfs "$LUN" --label perms
t_mount "$LUN" "$MP"
chmod 755 "$MP"

step "a directory only root may search: nothing in it is reached"
both 'mkdir "$D/priv" && echo secret >"$D/priv/f" && chmod 644 "$D/priv/f" && chmod 700 "$D/priv"'
cached priv/f
expect_other EACCES stat priv/f
expect_other EACCES read priv/f
expect_other EACCES ls priv
expect_other EACCES create priv/new
# The kernel kept these names: if vmfsd checked permissions itself, no
# request would have reached it for the stat above.
kept=$("$VMFS" info "$MP" | sed -n 's/.*kernel cache *\([0-9]*\) names.*/\1/p')
[[ ${kept:-0} -gt 0 ]] || fail "vmfs info shows no name kept by the kernel; the steps above did not test its cache"

step "search without read: names reached, not listed; back to 0700 at once"
both 'chmod 711 "$D/priv"'
expect_other OK stat priv/f
expect_other OK read priv/f
expect_other EACCES ls priv
expect_other EACCES write priv/f
both 'chmod 700 "$D/priv"'
expect_other EACCES stat priv/f

step "file modes and owners"
both 'echo data >"$D/f600" && chmod 600 "$D/f600"'
cached f600
expect_other EACCES read f600
expect_other EACCES write f600
expect_other EPERM chmod f600 644
expect_other EPERM utime f600
expect_other EACCES touch f600
both "chown $NOBODY:$NOBODY \"\$D/f600\""
expect_other OK read f600
expect_other OK write f600
expect_other OK chmod f600 640
expect_other OK utime f600
expect_other EPERM chown f600 0
both 'echo data >"$D/f666" && chmod 666 "$D/f666"'
expect_other OK touch f666
expect_other EPERM utime f666

step "a directory the other user may not write"
both 'mkdir "$D/ro" && touch "$D/ro/x" && chmod 755 "$D/ro"'
cached ro/x
expect_other EACCES create ro/new
expect_other EACCES unlink ro/x
expect_other EACCES rename ro/x ro/y
expect_other EACCES mkdir ro/sub

step "a sticky directory: only a file's owner (or the directory's) removes it"
both 'mkdir "$D/tmp" && chmod 1777 "$D/tmp" && touch "$D/tmp/rootfile" && chmod 666 "$D/tmp/rootfile"'
cached tmp/rootfile
expect_other EPERM unlink tmp/rootfile
expect_other EPERM rename tmp/rootfile tmp/moved
expect_other OK write tmp/rootfile
expect_other OK create tmp/mine
expect_other OK rename tmp/mine tmp/mine2
expect_other OK unlink tmp/mine2
[[ -e $MP/tmp/rootfile ]] || fail "tmp/rootfile is gone"

step "unmount: what root made is intact"
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || {
	cat "$T_DIR/fsck.out" >&2
	fail "fsck -n found problems"
}
t_log "t_perms: passed"
