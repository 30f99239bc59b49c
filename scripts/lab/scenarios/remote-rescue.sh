# The far side of `keel remote install` (run on the host, scripts/lab/run-all.sh): a rescue
# system like Hetzner's (no ZFS; `zpool`/`zfs` scripts) reached over SSH from the host
# (KEEL_LAB_SSH_PORT), root logging in with the operator's key (KEEL_LAB_AUTHORIZED_KEY). It
# writes its part of the result, then waits: keel, uploaded from the host with keel-live,
# switches it to keel-live by kexec, and the host follows the install there.
. ./scenarios/lib.sh
rescue_network
hetzner_rescue
mkdir -p /root/.ssh /run/sshd
install -m 600 /payload/authorized_keys /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null
/usr/sbin/sshd
check "sshd listens" sh -c 'for i in $(seq 20); do ss -ltn | grep -q ":22 " && exit 0; sleep 1; done; exit 1'
mkdir -p /results
echo "$failures" >/results/pre-rc
(cd /results && tar cf /dev/vdc .)
echo "live-switch: switching at (waiting for keel remote install from the host)"
# keel-live takes over this machine; the wait ends with it (or the host's timeout)
sleep 3000
echo "FAIL  the rescue system was never switched"
finish
