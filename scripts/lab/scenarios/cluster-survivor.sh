# lab-node-02 in the cluster scenario, then the survivor of lab-node-01's rebuild (cluster.sh).
DR_ROLE=survivor
. ./scenarios/cluster.sh
