#!/usr/bin/env bash
#
# t_cluster_ask: the fast path's lock handover messages end to end over
# real corosyncs (tests/cluster/lib.sh, two hosts), with build/cnpeer
# running lockmgr/clusternet.c for made-up hosts (no volume: the engine's
# side is vol/cluster.c's and is tested with it).  The asker on host 1
# asks the holder on host 2:
#
#  - the holder releases at once: answered (0), the holder saw the
#    request with its address and mode
#  - it releases later (-EINPROGRESS, then cn_released): answered, after
#    the delay
#  - it refuses (-EBUSY): the asker hears EBUSY at once, not a timeout
#  - it stays silent: ETIMEDOUT after the asker's timeout
#  - it dies while the asker waits: ENOTCONN as soon as the group says so
#  - a host that is not a member (wrong generation): ENOTCONN at once
#  - membership: each side logs the other joining, and leaving
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

PEER=$VMFS_BUILD/cnpeer
[[ -x $PEER ]] || fail "$PEER missing: make $VMFS_BUILD/cnpeer"
VOL=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
HOLDER=11111111-2222-3333-4444-555555555555
ASKER=66666666-7777-8888-9999-aaaaaaaaaaaa
SERVE_PID=

# serve ANSWER: the holder (slot 1, generation 7) on host 2, until ready.
serve() {
	local w
	stop_serve
	# nsenter execs cnpeer: $! is cnpeer itself (a function in the
	# background would be a subshell).
	nsenter --net="/run/netns/$(cl_ns 2)" -- "$PEER" serve --vol "$VOL" \
		--host "$HOLDER" --slot 1 --gen 7 --name holder --answer "$1" \
		--seconds 60 >"$T_DIR/serve.out" 2>"$T_DIR/serve.err" &
	SERVE_PID=$!
	CL_ALL_PIDS+=("$SERVE_PID")
	T_PIDS+=("$SERVE_PID")
	for ((w = 0; w < 100; w++)); do
		grep -q '^ready' "$T_DIR/serve.out" && return 0
		t_pid_alive "$SERVE_PID" || break
		sleep 0.1
	done
	fail "cnpeer serve did not join: $(cat "$T_DIR/serve.err")"
}

stop_serve() {
	[[ -n $SERVE_PID ]] || return 0
	local rc=0
	kill -TERM "$SERVE_PID" 2>/dev/null || true
	wait "$SERVE_PID" 2>/dev/null || rc=$?
	t_pid_alive "$SERVE_PID" && fail "cnpeer serve $SERVE_PID survived SIGTERM"
	SERVE_PID=
	# It leaves the group and ends cleanly (a sanitizer build: no leak).
	((rc == 0)) || fail "cnpeer serve exited with status $rc: $(tail -n 20 "$T_DIR/serve.err")"
}

# ask TARGET_GEN TIMEOUT_MS [cnpeer options]: "RESULT MS" of one ask from
# host 1.
ask() {
	local out
	out=$(cl_exec 1 "$PEER" ask --vol "$VOL" --host "$ASKER" --slot 0 --gen 3 \
		--name asker --target "$HOLDER:1:$1" --addr 123456 \
		--timeout-ms "$2" "${@:3}" 2>"$T_DIR/ask.err") ||
		fail "cnpeer ask failed: $(cat "$T_DIR/ask.err")"
	sed -n 's/^result //p' <<<"$out"
}

# ask_expect NAME RESULT MIN_MS MAX_MS [TARGET_GEN TIMEOUT_MS [OPTIONS]]
ask_expect() {
	local name=$1 want=$2 min=$3 max=$4 got res ms
	got=$(ask "${5:-7}" "${6:-3000}" "${@:7}")
	read -r res ms <<<"$got"
	[[ $res == "$want" ]] || fail "$name: the ask gave '$got', expected $want"
	((ms >= min && ms <= max)) ||
		fail "$name: the ask took $ms ms, expected $min to $max"
	t_log "$name: $res after $ms ms"
}

cl_up 2

step "the holder releases at once"
serve released
ask_expect "released" 0 0 2500
grep -q "^request 123456 1$" "$T_DIR/serve.out" ||
	fail "the holder did not see the request for 123456 exclusive: $(cat "$T_DIR/serve.out")"
grep -q "^joined asker 0$" "$T_DIR/serve.out" ||
	fail "the holder did not report the asker joining"
grep -q "^left asker 0$" "$T_DIR/serve.out" ||
	fail "the holder did not report the asker leaving"

step "the holder releases half a second later"
serve late
ask_expect "late" 0 400 2500

step "the holder refuses: EBUSY at once"
serve busy
ask_expect "busy" EBUSY 0 2500 7 10000

step "the holder stays silent: ETIMEDOUT"
serve silent
ask_expect "silent" ETIMEDOUT 1400 4000 7 1500

step "the holder dies while the asker waits: ENOTCONN"
serve silent
(sleep 1; kill -KILL "$SERVE_PID") &
ask_expect "holder killed" ENOTCONN 500 5000 7 20000
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=

step "a host that is not a member: ENOTCONN at once"
serve released
# The holder's next generation (a remount) is not the member that is in
# the group: never asked.
ask_expect "not a member" ENOTCONN 0 500 8 10000 --no-wait
# cnpeer ask waits for its target to be a member before it asks; a later
# generation of the holder never is, so it gives up and says why.
cl_exec 1 "$PEER" ask --vol "$VOL" --host "$ASKER" --slot 0 --gen 3 --name asker \
	--target "$HOLDER:1:8" >"$T_DIR/ask8.out" 2>&1 &&
	fail "an ask of a host that is not a member went through: $(cat "$T_DIR/ask8.out")"
grep -q "not a known member" "$T_DIR/ask8.out" ||
	fail "cnpeer ask of a non-member: $(cat "$T_DIR/ask8.out")"
stop_serve
t_log "ok"
