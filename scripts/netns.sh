#!/usr/bin/env bash
# netns.sh: small helper for the network namespaces tapstack's TAP links
# live in. Needs root and iproute2.
#
#   scripts/netns.sh create NAME        create NAME and bring its lo up
#   scripts/netns.sh delete NAME        delete NAME (and the devices in it)
#   scripts/netns.sh exec NAME CMD...   run CMD inside NAME
#   scripts/netns.sh list               list namespaces
#
# Example: a namespace for a TAP link, then its view of the link:
#   scripts/netns.sh create ts0
#   bin/tapadm dladm create-tap tap0 --netns ts0 --mtu 1500
#   scripts/netns.sh exec ts0 ip addr add 10.99.0.2/24 dev tap0
#   scripts/netns.sh exec ts0 ip link set tap0 up
set -euo pipefail

prog=${0##*/}

usage() {
	cat >&2 <<EOF
usage: $prog create NAME
       $prog delete NAME
       $prog exec NAME CMD [ARG...]
       $prog list
EOF
	exit 2
}

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

need_name() {
	[[ $# -ge 1 && -n $1 ]] || usage
	[[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad namespace name: $1"
}

command -v ip >/dev/null 2>&1 || die "ip (iproute2) not found: run make deps"

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
create)
	need_name "$@"
	[[ $# -eq 1 ]] || usage
	[[ ! -e /run/netns/$1 ]] || die "namespace $1 already exists"
	ip netns add "$1"
	if ! ip -n "$1" link set lo up; then
		ip netns delete "$1"
		die "could not bring lo up in $1; removed it"
	fi
	echo "created namespace $1"
	;;
delete)
	need_name "$@"
	[[ $# -eq 1 ]] || usage
	[[ -e /run/netns/$1 ]] || die "no namespace $1"
	ip netns delete "$1"
	echo "deleted namespace $1"
	;;
exec)
	need_name "$@"
	[[ $# -ge 2 ]] || usage
	ns=$1
	shift
	exec ip netns exec "$ns" "$@"
	;;
list)
	[[ $# -eq 0 ]] || usage
	ip netns list
	;;
-h | --help | help)
	usage
	;;
*)
	echo "$prog: unknown command: $cmd" >&2
	usage
	;;
esac
