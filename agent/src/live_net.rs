//! keel-live's uplink set by netlink (the `rtnetlink` crate), as `ip link set up`, `ip addr add
//! LOCAL [peer PEER/LEN]` and `ip route add DST [via GW] dev IF [onlink]` would: the rescue's
//! addresses and routes (`keel_installer::live::Uplink`, parsed there) on the NIC keel-live
//! found by the rescue's MAC. Machine-touching and thin: what is set is decided in the plan.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::TryStreamExt;
use keel_installer::live::Uplink;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

async fn index_of(handle: &Handle, name: &str) -> Result<u32> {
    let link = handle.link().get().match_name(name.to_string()).execute().try_next().await.with_context(|| format!("netlink: looking up {name}"))?;
    link.map(|l| l.header.index).ok_or_else(|| anyhow!("netlink: no interface {name}"))
}

async fn up(handle: &Handle, name: &str) -> Result<u32> {
    let index = index_of(handle, name).await?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.with_context(|| format!("netlink: setting {name} up"))?;
    Ok(index)
}

async fn apply_async(dev: &str, uplink: &Uplink) -> Result<()> {
    let (connection, handle, _) = rtnetlink::new_connection().context("opening a netlink socket")?;
    tokio::spawn(connection);
    up(&handle, "lo").await?;
    let index = up(&handle, dev).await?;
    for a in &uplink.addresses {
        let (ip, len, peer) = a.parts().map_err(|e| anyhow!(e))?;
        let mut req = handle.address().add(index, ip, len);
        if let Some(p) = peer {
            // IFA_LOCAL is this end, IFA_ADDRESS the peer (the prefix is the peer's)
            let attrs = &mut req.message_mut().attributes;
            attrs.retain(|x| !matches!(x, AddressAttribute::Address(_) | AddressAttribute::Broadcast(_)));
            attrs.push(AddressAttribute::Address(p));
        }
        req.execute().await.with_context(|| format!("netlink: adding {} to {dev}", a.ip_args(dev).join(" ")))?;
    }
    for r in &uplink.routes {
        let (dst, via) = r.parts().map_err(|e| anyhow!(e))?;
        let v6 = r.ipv6 || dst.is_some_and(|(d, _)| d.is_ipv6()) || via.is_some_and(|g| g.is_ipv6());
        let message = if v6 {
            let mut b = RouteMessageBuilder::<std::net::Ipv6Addr>::new().output_interface(index);
            if let Some((IpAddr::V6(d), l)) = dst {
                b = b.destination_prefix(d, l);
            }
            if let Some(IpAddr::V6(g)) = via {
                b = b.gateway(g);
            }
            if r.onlink {
                b = b.onlink();
            }
            b.build()
        } else {
            let mut b = RouteMessageBuilder::<std::net::Ipv4Addr>::new().output_interface(index);
            if let Some((IpAddr::V4(d), l)) = dst {
                b = b.destination_prefix(d, l);
            }
            if let Some(IpAddr::V4(g)) = via {
                b = b.gateway(g);
            }
            if r.onlink {
                b = b.onlink();
            }
            b.build()
        };
        // an IPv6 route may wait for the link-local address (DAD): a few tries
        let mut tries = 0;
        loop {
            match handle.route().add(message.clone()).execute().await {
                Ok(()) => break,
                Err(_) if tries < 9 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => bail!("netlink: adding the route `{}`: {e}", r.ip_args(dev).join(" ")),
            }
        }
    }
    Ok(())
}

/// Sets `lo` and `dev` up, then the uplink's addresses and routes on `dev`.
pub fn apply(dev: &str, uplink: &Uplink) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().context("starting the netlink runtime")?;
    rt.block_on(apply_async(dev, uplink))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    /// In a network namespace of its own (this test's thread): a veth pair stands for the
    /// server's NIC; the rescue's uplink as Hetzner gives it (a /32 with the gateway as peer,
    /// IPv6 via fe80::1, a host route) is set by netlink and read back with `ip -j`.
    #[test]
    fn the_rescue_uplink_is_set_by_netlink_as_ip_would() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: a network namespace needs root");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
            let ip = |args: &[&str]| {
                let o = Command::new("ip").args(args).output().expect("running ip");
                assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
                String::from_utf8_lossy(&o.stdout).into_owned()
            };
            ip(&["link", "add", "k0", "address", "a8:a1:59:41:00:01", "type", "veth", "peer", "name", "k1"]);
            ip(&["link", "set", "k1", "up"]);
            let addr = r#"[{"ifname":"eth0","address":"a8:a1:59:41:00:01","addr_info":[
                {"family":"inet","local":"203.0.113.10","prefixlen":32,"address":"203.0.113.1","scope":"global"},
                {"family":"inet6","local":"2001:db8:10:1::2","prefixlen":64,"scope":"global"}]}]"#;
            let r4 = r#"[{"dst":"default","gateway":"203.0.113.1","dev":"eth0","flags":["onlink"]},{"dst":"198.51.100.7","gateway":"203.0.113.1","dev":"eth0","flags":[]}]"#;
            let r6 = r#"[{"dst":"default","gateway":"fe80::1","dev":"eth0","flags":[]}]"#;
            let uplink = keel_installer::live::rescue_uplink(addr, r4, r6).unwrap();
            super::apply("k0", &uplink).unwrap();
            let a: serde_json::Value = serde_json::from_str(&ip(&["-j", "addr", "show", "dev", "k0"])).unwrap();
            let infos = a[0]["addr_info"].as_array().unwrap();
            let v4 = infos.iter().find(|i| i["family"] == "inet").expect("an IPv4 address");
            assert_eq!((v4["local"].as_str(), v4["address"].as_str(), v4["prefixlen"].as_u64()), (Some("203.0.113.10"), Some("203.0.113.1"), Some(32)), "{a}");
            assert!(v4.get("broadcast").is_none(), "a point-to-point address has no broadcast: {a}");
            assert!(infos.iter().any(|i| i["local"] == "2001:db8:10:1::2" && i["prefixlen"] == 64), "{a}");
            assert_eq!(a[0]["operstate"].as_str(), Some("UP"), "{a}");
            let lo: serde_json::Value = serde_json::from_str(&ip(&["-j", "link", "show", "dev", "lo"])).unwrap();
            assert!(lo[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "lo up: {lo}");
            let routes = ip(&["route", "show", "dev", "k0"]);
            assert!(routes.contains("default via 203.0.113.1 proto static onlink"), "{routes}");
            assert!(routes.contains("198.51.100.7 via 203.0.113.1 proto static"), "{routes}");
            let r6 = ip(&["-6", "route", "show", "dev", "k0"]);
            assert!(r6.contains("default via fe80::1 proto static"), "{r6}");
        })
        .join()
        .expect("the namespace thread");
    }
}
