# lab-node-01 after its rebuild from the image (dr-reinstall.sh) while lab-node-02 kept running:
# its first boot joins the running cluster under its old name and node id (cluster.sh).
DR_ROLE=rejoined
. ./scenarios/cluster.sh
