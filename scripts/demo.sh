#!/usr/bin/env bash
# demo.sh: a guided tour of tapstack. Starts tapstackd with the echo and
# discard services, gives it a TAP link into a fresh network namespace,
# configures two addresses the illumos way (tap0 and the logical interface
# tap0:1), and has the namespace's kernel talk to the userspace stack: ping,
# TCP and UDP echo, discard, and taking tap0:1 down and up again.
#
# Usage (as root, from anywhere; it works in the repository root):
#   make demo            # builds bin/ first
#   sudo scripts/demo.sh # after make build
#
# Everything it creates (the daemon, the namespace tsdemo-PID, a temp dir)
# is removed on exit, also when a step fails or on Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ns="tsdemo-$$"
tmp=""
sock=""
daemon_pid=""
ns_created=""

say() { printf '\n== %s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# run prints a command, then runs it.
run() {
	printf '+ %s\n' "$*"
	"$@"
}

# tapadm runs bin/tapadm against our daemon, printing the command.
tapadm() {
	run bin/tapadm --ctl "$sock" "$@"
}

# in_ns runs a command inside the namespace, printing it.
in_ns() {
	run ip netns exec "$ns" "$@"
}

have() { command -v "$1" >/dev/null 2>&1; }

cleanup() {
	local rc=$?
	if (($# > 0)); then
		rc=$1 # a signal: 128 + its number
	fi
	trap - EXIT INT TERM
	set +e
	say "tear down"
	if [[ -n $daemon_pid ]]; then
		if kill -0 "$daemon_pid" 2>/dev/null; then
			echo "stopping tapstackd (pid $daemon_pid) with SIGTERM"
			kill -TERM "$daemon_pid"
			for _ in $(seq 50); do
				kill -0 "$daemon_pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$daemon_pid" 2>/dev/null; then
				echo "tapstackd still running after 5s: SIGKILL"
				kill -KILL "$daemon_pid"
			fi
		fi
		wait "$daemon_pid" 2>/dev/null
		echo "tapstackd exited with status $?"
	fi
	if ((rc != 0)) && [[ -n $tmp && -s $tmp/tapstackd.log ]]; then
		say "tapstackd log (last 50 lines)"
		tail -n 50 "$tmp/tapstackd.log"
	fi
	if [[ -n $ns_created ]]; then
		echo "deleting namespace $ns"
		ip netns delete "$ns"
	fi
	if [[ -n $tmp ]]; then
		rm -rf "$tmp"
	fi
	if ((rc == 0)); then
		echo "demo finished"
	else
		echo "demo FAILED (exit status $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'cleanup 130' INT
trap 'cleanup 143' TERM

# wait_reachable waits (up to 10 s) until ADDR answers a ping from the
# namespace: an address may still be doing duplicate address detection
# right after `up`.
wait_reachable() {
	local addr=$1
	for _ in $(seq 10); do
		if ip netns exec "$ns" ping -c 1 -W 1 "$addr" >/dev/null 2>&1; then
			return 0
		fi
		echo "waiting for $addr to answer ..."
		sleep 0.5
	done
	die "$addr does not answer pings"
}

# tcp_echo HOST PORT MSG prints what the server sends back (socat: until it
# closes after our half-close; bash, which cannot half-close: one line).
tcp_echo() {
	local host=$1 port=$2 msg=$3
	if have socat; then
		printf '+ echo %q | ip netns exec %s socat - TCP:%s:%s\n' "$msg" "$ns" "$host" "$port" >&2
		printf '%s\n' "$msg" | ip netns exec "$ns" socat -t 2 -T 5 - "TCP:$host:$port,connect-timeout=5"
	else
		printf '+ ip netns exec %s bash -c (/dev/tcp/%s/%s) <<< %q\n' "$ns" "$host" "$port" "$msg" >&2
		# shellcheck disable=SC2016 # expanded by the inner bash
		ip netns exec "$ns" timeout 5 bash -c \
			'exec 3<>"/dev/tcp/$1/$2" && printf "%s\n" "$3" >&3 && head -n 1 <&3' _ "$host" "$port" "$msg"
	fi
}

# udp_echo HOST PORT MSG prints the datagram the server sends back, if any
# within 2 s. (bash's read cannot be used on a UDP socket: it reads a byte
# at a time, and the first byte consumes the whole datagram.)
udp_echo() {
	local host=$1 port=$2 msg=$3
	if have socat; then
		printf '+ echo %q | ip netns exec %s socat - UDP:%s:%s\n' "$msg" "$ns" "$host" "$port" >&2
		printf '%s\n' "$msg" | ip netns exec "$ns" socat -t 2 -T 3 - "UDP:$host:$port"
	else
		printf '+ ip netns exec %s bash -c (/dev/udp/%s/%s) <<< %q\n' "$ns" "$host" "$port" "$msg" >&2
		# shellcheck disable=SC2016 # expanded by the inner bash
		ip netns exec "$ns" timeout 5 bash -c \
			'exec 3<>"/dev/udp/$1/$2" && printf "%s\n" "$3" >&3 && timeout 2 head -n 1 <&3' \
			_ "$host" "$port" "$msg" || true
	fi
}

# tcp_discard HOST PORT MSG sends MSG and prints whatever comes back
# within 2 s (from discard: nothing).
tcp_discard() {
	local host=$1 port=$2 msg=$3
	if have socat; then
		printf '+ echo %q | ip netns exec %s socat - TCP:%s:%s\n' "$msg" "$ns" "$host" "$port" >&2
		printf '%s\n' "$msg" | ip netns exec "$ns" socat -t 2 -T 5 - "TCP:$host:$port,connect-timeout=5"
	else
		printf '+ ip netns exec %s bash -c (/dev/tcp/%s/%s) <<< %q\n' "$ns" "$host" "$port" "$msg" >&2
		# shellcheck disable=SC2016 # expanded by the inner bash
		ip netns exec "$ns" timeout 5 bash -c \
			'exec 3<>"/dev/tcp/$1/$2" && printf "%s\n" "$3" >&3 && { timeout 2 head -n 1 <&3 || true; }' \
			_ "$host" "$port" "$msg"
	fi
}

# check_reply WHAT GOT WANT
check_reply() {
	local what=$1 got=$2 want=$3
	printf 'reply: %s\n' "${got:-(nothing)}"
	[[ $got == "$want" ]] || die "$what: got '$got', want '$want'"
}

say "check prerequisites"
[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, TAP devices): sudo $0"
[[ -e /dev/net/tun ]] || die "/dev/net/tun is missing (modprobe tun)"
for c in ip ping; do
	have "$c" || die "command $c not found: run make deps"
done
for b in bin/tapstackd bin/tapadm; do
	[[ -x $b ]] || die "$b not built: run make build (or make demo)"
done
echo "root, /dev/net/tun, ip, ping, bin/tapstackd, bin/tapadm: ok"
if have socat; then
	echo "socat found: using it for the echo tests"
else
	echo "socat not found: using bash /dev/tcp and /dev/udp for the echo tests"
fi

say "create namespace $ns"
[[ ! -e /run/netns/$ns ]] || die "namespace $ns already exists"
run ip netns add "$ns"
ns_created=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapstack-demo.XXXXXX")
sock=$tmp/tapstackd.sock

say "start tapstackd (echo and discard services)"
printf '+ %s &\n' "bin/tapstackd --ctl $sock --state $tmp/state.json --services echo,discard"
bin/tapstackd --ctl "$sock" --state "$tmp/state.json" --services echo,discard >"$tmp/tapstackd.log" 2>&1 &
daemon_pid=$!
echo "tapstackd pid $daemon_pid, log $tmp/tapstackd.log"
for _ in $(seq 100); do
	[[ -S $sock ]] && break
	kill -0 "$daemon_pid" 2>/dev/null || die "tapstackd exited before creating $sock"
	sleep 0.1
done
[[ -S $sock ]] || die "tapstackd did not create $sock within 10s"
echo "control socket $sock is up"

say "create the TAP link tap0 inside $ns"
tapadm dladm create-tap tap0 --netns "$ns" --mtu 1500

say "plumb tap0 and configure 10.99.0.1/24 on tap0 and 10.99.0.3/24 on tap0:1"
tapadm ifconfig tap0 plumb
tapadm ifconfig tap0 10.99.0.1/24 up
tapadm ifconfig tap0 addif 10.99.0.3/24 up

say "configure the namespace side: 10.99.0.2/24 on tap0"
in_ns ip addr add 10.99.0.2/24 dev tap0
in_ns ip link set tap0 up
in_ns ip link set lo up
in_ns ip addr show dev tap0

say "tapadm dladm show-link"
tapadm dladm show-link

say "tapadm ifconfig -a"
tapadm ifconfig -a

say "tapadm netstat -rn"
tapadm netstat -rn

say "ping tap0 (10.99.0.1) and tap0:1 (10.99.0.3) from $ns"
wait_reachable 10.99.0.1
in_ns ping -c 3 -W 2 10.99.0.1
wait_reachable 10.99.0.3
in_ns ping -c 3 -W 2 10.99.0.3

say "TCP echo on 10.99.0.1:7"
reply=$(tcp_echo 10.99.0.1 7 "hello tapstack")
check_reply "TCP echo" "$reply" "hello tapstack"

say "UDP echo on 10.99.0.1:7"
reply=$(udp_echo 10.99.0.1 7 "hello tapstack")
check_reply "UDP echo" "$reply" "hello tapstack"

say "TCP discard on 10.99.0.1:9 (answers nothing)"
reply=$(tcp_discard 10.99.0.1 9 "hello tapstack")
check_reply "TCP discard" "$reply" ""

say "bring tap0:1 down: 10.99.0.3 must stop answering"
tapadm ifconfig tap0:1 down
if in_ns ping -c 2 -W 1 10.99.0.3; then
	die "10.99.0.3 still answers with tap0:1 down"
fi
echo "no answer from 10.99.0.3, as expected"
in_ns ping -c 1 -W 2 10.99.0.1 >/dev/null
echo "10.99.0.1 on tap0 still answers"

say "bring tap0:1 up again: 10.99.0.3 answers again"
tapadm ifconfig tap0:1 up
wait_reachable 10.99.0.3
in_ns ping -c 3 -W 2 10.99.0.3

say "tapadm ifconfig -a"
tapadm ifconfig -a
