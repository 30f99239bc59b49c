# lab-node-02 in the cluster scenario, then the survivor of lab-node-01's rebuild (cluster.sh).
DR_ROLE=survivor
# first, with the node booted: pools from keel-live's newer OpenZFS (lib.sh compat_pools_check)
. ./scenarios/lib.sh
wait_booted
compat_pools_check
. ./scenarios/cluster.sh
