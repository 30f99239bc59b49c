#!/usr/bin/env bash
# Unpacks Debian's ifupdown2 into DEST without installing it (installing it would take over
# this machine's networking), so tests can run its parser: DEST/bin/ifup --syntax-check -i FILE.
# Needs apt's package lists (apt-get update) and root (ifupdown2 refuses to run otherwise).
set -euo pipefail
dest=${1:?usage: fetch-ifupdown2.sh DEST}
if [ -x "$dest/bin/ifup" ]; then exit 0; fi
mkdir -p "$dest"
cd "$dest"
apt-get download ifupdown2 >/dev/null 2>&1 || { echo "apt-get download ifupdown2 failed" >&2; exit 1; }
dpkg-deb -x ifupdown2_*.deb root
share="$PWD/root/usr/share/ifupdown2"
# ifupdown2 finds its configuration relative to its package when /etc has none
mkdir -p "$share/etc/network"
cp -r root/etc/network/ifupdown2 "$share/etc/network/"
mkdir -p bin
# it dispatches on the name it was called by
ln -sf "$share/__main__.py" bin/ifup
echo "ifupdown2 $(dpkg-deb -f ifupdown2_*.deb Version) unpacked in $dest"
