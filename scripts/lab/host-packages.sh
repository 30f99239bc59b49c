#!/usr/bin/env bash
# Host packages for the lab: QEMU from bookworm-backports (the image's qemu-utils comes from
# there too), debootstrap; for the lab's package repository apt-ftparchive, gpg, python3;
# mmdebstrap for bench-network.sh's native pass; cpio and zstd to pack keel-live. Adds Debian
# contrib + backports beside the existing mirror.
set -euo pipefail
if command -v qemu-system-x86_64 >/dev/null && command -v debootstrap >/dev/null && [ -f /usr/share/ovmf/OVMF.fd ] \
  && command -v apt-ftparchive >/dev/null && command -v gpg >/dev/null && command -v debugfs >/dev/null && command -v python3 >/dev/null && command -v nc >/dev/null && command -v mmdebstrap >/dev/null \
  && command -v cpio >/dev/null && command -v zstd >/dev/null; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "installing QEMU needs root" >&2; exit 1; }
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$uri" ] || { echo "no Debian mirror found in /etc/apt (debian.sources or sources.list)" >&2; exit 1; }
# only what the machine's own sources lack (contrib, and backports' main and contrib), so apt
# does not warn about targets configured twice
sources=$(cat <<SRC
Types: deb
URIs: $uri
Suites: bookworm bookworm-updates
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
)
[ "$(cat /etc/apt/sources.list.d/keel-lab.sources 2>/dev/null)" = "$sources" ] || echo "$sources" >/etc/apt/sources.list.d/keel-lab.sources
apt-get update -qq 2>/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports \
  qemu-system-x86 qemu-system-data seabios ipxe-qemu qemu-utils >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap e2fsprogs ovmf \
  apt-utils gnupg python3 dpkg-dev netcat-openbsd mmdebstrap cpio zstd >/dev/null
echo "lab host packages: $(qemu-system-x86_64 --version | head -1)"
