# detect, and check against both specs: qemu-lab passes, ax41-nvme fails on the small drives.
. ./scenarios/lib.sh
./keel detect
check "keel detect --json" ./keel detect --json
check "check against qemu-lab passes" ./keel check --spec hardware-specs/qemu-lab.toml
./keel check --spec hardware-specs/ax41-nvme.toml >/tmp/ax41.txt 2>&1
equals "check against ax41-nvme exit code" 1 "$?"
cat /tmp/ax41.txt
check "ax41: the CPU does not match" grep -q "^cpu model .*FAIL" /tmp/ax41.txt
check "ax41: too little memory" grep -q "^memory .*FAIL" /tmp/ax41.txt
check "ax41: nvme0n1 too small" grep -q "^nvme0n1 size .*FAIL" /tmp/ax41.txt
check "ax41: nvme1n1 too small" grep -q "^nvme1n1 size .*FAIL" /tmp/ax41.txt
check "serial LABNVME0001 seen" sh -c "./keel detect | grep -q LABNVME0001"
finish
