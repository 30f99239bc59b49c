# keel image build in the rescue system, over the disks of the installed lab-node-01: the base
# snapshot its network install took (rpool/ROOT/pve-1@keel-base, before anything of the node,
# without SSH host keys) becomes a zstd image with its manifest, written to the export disk
# (ext4, read by the host with debugfs). For the bench's memory figure (keel.bench=1) a second,
# larger image: the same root plus 512 MiB of random data (snapshot keel-big, removed again).
. ./scenarios/lib.sh
zpool import -f -d /dev/disk/by-id -N -R /mnt/keel rpool && zfs mount rpool/ROOT/pve-1 \
  || { echo "FAIL  cannot import rpool of the installed node"; exit 1; }
check "the network install left the base snapshot" zfs list -H -t snapshot rpool/ROOT/pve-1@keel-base
check "the base snapshot holds no SSH host keys" sh -c '! ls /mnt/keel/.zfs/snapshot/keel-base/etc/ssh/ | grep -q ssh_host_'
check "the installed node has its own host keys" sh -c 'ls /mnt/keel/etc/ssh/ | grep -q ssh_host_ed25519_key'
mkfs.ext4 -q -F -L keelexport /dev/disk/by-id/virtio-keelexport
mkdir -p /export && mount /dev/disk/by-id/virtio-keelexport /export
s=$(date +%s)
./keel image build --out /export/pve-base.zfs.zst
equals "keel image build exit code" 0 "$?"
echo "figure: image build (base) $(( $(date +%s) - s ))s"
cat /export/pve-base.zfs.zst.json
check "the manifest names the base snapshot" grep -q '"snapshot": "keel-base"' /export/pve-base.zfs.zst.json
check "the manifest lists the Proxmox package" grep -q '"proxmox-ve"' /export/pve-base.zfs.zst.json
equals "the manifest's sha256 is the file's" "$(sha256sum /export/pve-base.zfs.zst | cut -d' ' -f1)" "$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' /export/pve-base.zfs.zst.json)"
./keel image show /export/pve-base.zfs.zst
# the larger image, for the memory figure of the bench (keel.bench=1: bench-image.sh)
if grep -q 'keel\.bench=1' /proc/cmdline; then
  head -c 512M /dev/urandom >/mnt/keel/var/tmp/keel-bench-fill
  zfs snapshot rpool/ROOT/pve-1@keel-big
  s=$(date +%s)
  ./keel image build --snapshot keel-big --out /export/pve-big.zfs.zst
  equals "keel image build (big) exit code" 0 "$?"
  echo "figure: image build (big) $(( $(date +%s) - s ))s"
  zfs destroy rpool/ROOT/pve-1@keel-big
  rm -f /mnt/keel/var/tmp/keel-bench-fill
fi
ls -l /export
umount /export
zfs umount rpool/ROOT/pve-1
zpool export rpool
finish
