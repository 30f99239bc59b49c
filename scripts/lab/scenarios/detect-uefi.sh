# The same guest booted through OVMF: keel sees UEFI, the spec allows it, and the plan is made.
. ./scenarios/lib.sh
./keel detect | head -3
equals "firmware mode" '"firmware": "uefi",' "$(./keel detect --json | grep -o '"firmware": "[a-z]*",')"
check "check against qemu-lab passes under UEFI" ./keel check --spec hardware-specs/qemu-lab.toml
check "plan for lab-node-01 under UEFI" ./keel plan --profile profiles/lab-node-01.toml
finish
