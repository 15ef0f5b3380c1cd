#!/usr/bin/env bash
#
# tests/model/run.sh MODEL WORKDIR [CONFIG...]: check the protocol model
# (docs/protocol.pml) with spin; `make model` and t_model.sh run it.
#
# Every configuration is a set of -D switches of the model.  The clean ones
# (both lock primitives) must check exhaustively with 0 errors; each
# seeded-bug one must make spin report an error, which shows that the
# properties can fail.  Each configuration runs in its own temp directory
# under WORKDIR, removed afterwards; the counterexample (trail) of an
# unexpected result is kept next to it, with the command that replays it.
# Prints one line per configuration (states, time) and exits non-zero if
# any configuration did not give the expected result.  CONFIG names run
# only those configurations.

set -uo pipefail

if (($# < 2)); then
	echo "usage: $0 MODEL WORKDIR [CONFIG...]" >&2
	exit 2
fi
model=$(realpath "$1")
workdir=$2
shift 2

for tool in spin gcc; do
	if ! command -v "$tool" >/dev/null; then
		echo "model: $tool is not installed; run 'make deps' (Debian package $tool)" >&2
		exit 2
	fi
done
[[ -r $model ]] || { echo "model: cannot read $model" >&2; exit 2; }
mkdir -p "$workdir" || exit 2
workdir=$(realpath "$workdir")

# name | expect (ok: 0 errors, bug: at least one) | -D switches
configs=(
	"ats|ok|"
	"reserve|ok|-DRESERVE"
	"bug_no_gate|bug|-DBUG_NO_GATE"
	"bug_break_before_replay|bug|-DBUG_BREAK_BEFORE_REPLAY"
	"bug_release_dirty|bug|-DBUG_RELEASE_DIRTY"
	"bug_no_compare|bug|-DBUG_NO_COMPARE"
	"bug_fence_late|bug|-DBUG_FENCE_LATE"
	"bug_last_ok_at_end|bug|-DBUG_LAST_OK_AT_END"
	"bug_renew_ungated|bug|-DRESERVE -DBUG_RENEW_UNGATED"
	"reserve_no_gate|bug|-DRESERVE -DBUG_NO_GATE"
)

# property PAN_OUTPUT: which of the model's properties the first violated
# assertion is (docs/protocol.pml, "Properties").
property() {
	local a
	a=$(grep -m1 'assertion violated' "$1")
	case $a in
	*taken*) echo "property 2 violated (a write after a break)" ;;
	*'>=disk'*) echo "property 3 violated (the block went back to an older version)" ;;
	*fenced*) echo "property 1 violated (mutual exclusion)" ;;
	*) echo "${a:-no assertion}" ;;
	esac
}

# check_one NAME EXPECT DEFS: 0 if spin gave the expected result.
check_one() {
	local name=$1 expect=$2 defs=$3 dir out t0 errors stored rc=0 opt
	local -a d
	read -ra d <<<"$defs"
	dir=$(mktemp -d "$workdir/$name.XXXXXX") || return 1
	out=$dir/pan.out
	t0=$(date +%s%N)
	# The clean runs explore millions of states: optimise pan.  A
	# seeded bug is found within a second: compile it quickly.
	opt=-O2
	[[ $expect == bug ]] && opt=-O0
	if ! (cd "$dir" && spin -a "${d[@]}" "$model" >spin.out 2>&1); then
		echo "FAIL $name: spin -a ${d[*]} failed:"
		sed 's/^/    /' "$dir/spin.out"
		rm -rf "$dir"
		return 1
	fi
	if ! (cd "$dir" && gcc "$opt" -w -DSAFETY -DNOBOUNDCHECK -o pan pan.c \
		>gcc.out 2>&1); then
		echo "FAIL $name: gcc could not compile spin's verifier:"
		sed 's/^/    /' "$dir/gcc.out" | tail -n 20
		rm -rf "$dir"
		return 1
	fi
	# -E: no invalid-end-state check (see docs/protocol-model.md: hosts
	# wait forever for a lock a frozen host holds, by design).  -m: the
	# search depth; a truncated search is reported and fails below.
	(cd "$dir" && ./pan -E -m1000000 -w25 >"$out" 2>&1) || rc=$?
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -n 1)
	stored=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -n 1)
	local ms=$((($(date +%s%N) - t0) / 1000000))
	local what="${stored:-?} states, $((ms / 1000)).$((ms % 1000 / 100)) s"
	if [[ -z $errors ]]; then
		echo "FAIL $name: pan exited $rc without a result:"
		tail -n 20 "$out" | sed 's/^/    /'
		rm -rf "$dir"
		return 1
	fi
	if [[ $expect == ok ]]; then
		if ((errors == 0)) && ! grep -q 'max search depth too small' "$out"; then
			echo "ok   $name: 0 errors, $what"
			rm -rf "$dir"
			return 0
		fi
		local keep=$workdir/$name.trail
		[[ -f $dir/protocol.pml.trail ]] && cp "$dir/protocol.pml.trail" "$keep"
		echo "FAIL $name: spin found $errors error(s) ($what): $(property "$out")"
		grep -E 'pan:|depth too small' "$out" | head -n 5 | cut -c1-200 | sed 's/^/    /'
		if [[ -f $keep ]]; then
			echo "    replay the counterexample:" \
				"spin -k $keep -t -p -g ${d[*]} $model"
		fi
		rm -rf "$dir"
		return 1
	fi
	if ((errors > 0)); then
		echo "ok   $name: seeded bug caught, $(property "$out"), $what"
		rm -rf "$dir"
		return 0
	fi
	echo "FAIL $name: the seeded bug went unnoticed (0 errors, $what):" \
		"the model's properties no longer catch it"
	rm -rf "$dir"
	return 1
}

failed=0
t_all=$SECONDS
for c in "${configs[@]}"; do
	IFS='|' read -r name expect defs <<<"$c"
	if (($# > 0)); then
		want=0
		for n in "$@"; do [[ $n == "$name" ]] && want=1; done
		((want)) || continue
	fi
	check_one "$name" "$expect" "$defs" || failed=$((failed + 1))
done
rmdir "$workdir" 2>/dev/null
echo "model: $failed configuration(s) failed, $((SECONDS - t_all)) s in all"
((failed == 0))
