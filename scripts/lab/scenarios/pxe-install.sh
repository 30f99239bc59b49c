# lab-node-02 netbooted with nobody at the console: the NIC's iPXE got the registry's script
# for its MAC (GET /ipxe/MAC, a fresh single-use token in it), which booted the live kernel and
# initrd over HTTP with the registry and the token on the command line. keel install without
# any flag but the consent fetches the node's profile from the registry by that token and runs
# the disk phase (stopping there: the whole install is os-install's).
. ./scenarios/lib.sh
rescue_network
cat /proc/cmdline
check "the command line came from the registry's iPXE script" grep -q 'keel.registry=http://10.0.2.101:8080 keel.token=[0-9a-f]* keel.node=lab-node-02' /proc/cmdline
./keel install --yes --confirm-serials "$SERIALS" --journal-dir $JOURNALS --progress plain --until datasets.datapool >/tmp/install.txt 2>&1
equals "keel install exit code" 0 "$?"
tail -5 /tmp/install.txt
check "the profile of lab-node-02 came from the registry" grep -q 'from-registry/profiles/lab-node-02.toml from the registry' /tmp/install.txt
check "the journal records the pause after the disk phase" grep -q '"event":"paused"' $JOURNALS/install-lab-node-02.jsonl
check "the events reached the registry" grep -q 'events delivered' /tmp/install.txt
verify_disk_phase profiles/lab-node-02.toml
finish
