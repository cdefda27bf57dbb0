#!/bin/sh
# Install the Debian packages that build and test mailstow, when missing.
# Used by `make check` and `make demo`; needs root only when something is
# missing.
set -e
PKGS="build-essential pkg-config libssl-dev libevent-dev libsqlite3-dev
libyaml-dev libsystemd-dev libcurl4-openssl-dev libjansson-dev libcmocka-dev python3 python3-pytest openssl
dovecot-imapd dovecot-pop3d clang libclang-rt-14-dev systemd"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "mailstow: missing Debian packages:$missing" >&2
	echo "mailstow: run 'make deps' as root, or: apt-get install$missing" >&2
	exit 1
fi
echo "mailstow: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Dovecot's package starts a system instance; the tests run their own.
apt-get install -y -qq --no-install-recommends $missing >/dev/null
