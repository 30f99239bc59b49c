//! Metrics: Debian's prometheus-node-exporter listening on the profile's address only (a
//! drop-in: the package's /etc/default file stays the package's), and, for the seed's ZFS
//! scrape target (`:9134`, a "custom exporter" there), a second node exporter with only its ZFS
//! collector (the same node_zfs_* metrics the first one has too).

use crate::profile::{Metrics, Profile};

pub const NODE_EXPORTER_UNIT: &str = "prometheus-node-exporter.service";
pub const NODE_EXPORTER_DROPIN: &str = "/etc/systemd/system/prometheus-node-exporter.service.d/50-keel.conf";
pub const ZFS_EXPORTER_UNIT: &str = "keel-zfs-exporter.service";
pub const ZFS_EXPORTER_PATH: &str = "/etc/systemd/system/keel-zfs-exporter.service";
const BINARY: &str = "/usr/bin/prometheus-node-exporter";

/// The listen address needs the cluster bridge's address: after networking.service (Debian's
/// ifupdown2 unit orders itself before nothing but shutdown, not before network-online.target:
/// the lab's first boot saw both exporters fail to bind), and retried 5 s apart, not 100 ms
/// (systemd's default, which uses up the start limit in half a second).
const AFTER_NETWORK: &str = "Wants=network-online.target\nAfter=network-online.target networking.service";

pub fn node_exporter_dropin(p: &Profile, m: &Metrics) -> String {
    format!(
        "{}\n[Unit]\n{AFTER_NETWORK}\n\n[Service]\nExecStart=\nExecStart={BINARY} --web.listen-address={} $ARGS\nRestartSec=5\n",
        super::header(p, "node exporter on the profile's address only"),
        m.node_exporter
    )
}

pub fn zfs_exporter_unit(p: &Profile, addr: std::net::SocketAddr) -> String {
    format!(
        "{}\n[Unit]\nDescription=ZFS metrics for Prometheus (node exporter, ZFS collector only)\n{AFTER_NETWORK} zfs.target\n\n[Service]\nUser=prometheus\nExecStart={BINARY} --web.listen-address={addr} --collector.disable-defaults --collector.zfs\nRestart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n",
        super::header(p, "ZFS metrics (the seed's :9134 target)")
    )
}
