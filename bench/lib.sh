# Shared setup of the bench scripts: a scratch directory with a LUN,
# mount point and state dir, the vmfsd serving the mount found by its
# command line (stopped by PID, never by name), and a cleanup trap that
# unmounts, stops it, shows what the daemon had to say beyond routine
# notes, and removes everything.
#
#   bench_setup NAME      sets dir, mp, state; extra paths to remove go in
#                         bench_extra_cleanup (an array)
#   bench_mount LUN       mounts LUN on $mp with a log in $dir

bench_extra_cleanup=()
vmfsd_pid=

bench_cleanup() {
	set +e
	if mountpoint -q "$mp"; then
		"$vmfs" umount --state-dir "$state" "$mp" >/dev/null 2>&1 || umount -l "$mp"
	fi
	if [[ -n $vmfsd_pid ]] && kill -0 "$vmfsd_pid" 2>/dev/null; then
		kill "$vmfsd_pid"
	fi
	[[ -f $dir/vmfsd.log ]] && grep -vE ' (info|debug|notice):' "$dir/vmfsd.log" >&2
	rm -rf "$dir" "${bench_extra_cleanup[@]}"
}

bench_setup() {
	dir=$(mktemp -d "${BENCH_DIR:-/tmp}/vmfs-bench-$1.XXXXXX")
	mp=$dir/mnt
	state=$dir/state
	mkdir -p "$mp" "$state"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# The vmfsd serving $mp, by its command line.
bench_find_vmfsd() {
	local d
	for d in /proc/[0-9]*; do
		[[ $(readlink "$d/exe" 2>/dev/null) == */vmfsd ]] || continue
		tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qxF -- "$mp" || continue
		echo "${d#/proc/}"
		return 0
	done
}

bench_mount() {
	"$vmfs" mount --state-dir "$state" --log-file "$dir/vmfsd.log" "$1" "$mp"
	vmfsd_pid=$(bench_find_vmfsd)
}
