# A profile whose pinned Proxmox key checksum does not match the key served: keel stops at
# os.pve-key with a clear message, before any package is installed.
. ./scenarios/lib.sh
rescue_network
zeros=$(printf '0%.0s' $(seq 128))
sed "s/^pve-key-sha512 = .*/pve-key-sha512 = \"$zeros\"/" profiles/lab-node-01.toml >/tmp/wrong-key.toml
./keel install --profile /tmp/wrong-key.toml --spec hardware-specs/qemu-lab.toml --yes --confirm-serials "$SERIALS" \
  --journal-dir $JOURNALS --progress plain >/tmp/install.txt 2>&1
equals "keel install exit code" 1 "$?"
tail -8 /tmp/install.txt
check "the message names the key, its checksum and the pinned one" \
  grep -q "proxmox-release-bookworm.gpg from http://10.0.2.100/pve/proxmox-release-bookworm.gpg has SHA-512 fab337fbf4beff21.*the profile pins 0000" /tmp/install.txt
check "the journal says os.pve-key failed" grep -q '"event":"failed","step":"os.pve-key"' $JOURNALS/install-lab-node-01.jsonl
zfs mount rpool/ROOT/pve-1 2>/dev/null
check "the root file system is mounted for a look" mountpoint -q /mnt/keel
check "no package was installed (no dpkg database)" test ! -e /mnt/keel/var/lib/dpkg/status
check "the bad key was removed" test ! -e /mnt/keel/etc/apt/trusted.gpg.d/proxmox-release-bookworm.gpg
finish
