#!/usr/bin/env python3
"""The lab's keel-registry, seen by its operator (admin API over HTTP, no other tools):
  registry-admin.py setup URL ADMIN_TOKEN_FILE REPO   upload lab-node-01's profile, the qemu-lab
      spec and the lab cluster's root key (made now: ssh-keygen -t rsa -b 4096); arm lab-node-01
      (its MAC); print the enrollment token
  registry-admin.py arm URL ADMIN_TOKEN_FILE REPO [NODE]  upload NODE's profile (lab-node-02 by
      default), arm it (its MAC, no PXE) and print its enrollment token (the image installs:
      lab-node-02's, and lab-node-01's rebuild)
  registry-admin.py cluster URL ADMIN_TOKEN_FILE     both nodes' first boots: lab-node-01 created
      the cluster, lab-node-02 joined it; both ready
  registry-admin.py rejoined URL ADMIN_TOKEN_FILE    after lab-node-01's rebuild: its new first
      boot joined the running cluster (pvecm add, not create); both ready
  registry-admin.py installed URL ADMIN_TOKEN_FILE    the install's report arrived: state, result,
      SSH host keys, both pools, every event (exit 1 and say what is missing otherwise)
  registry-admin.py booted URL ADMIN_TOKEN_FILE       the first boot reported "ready" with the same
      host keys as the install's report
  registry-admin.py pxe URL ADMIN_TOKEN_FILE REPO     upload lab-node-02's profile (its drives' serials
      pinned: the unattended install's consent) and arm it for a
      PXE boot (its MAC; /ipxe/MAC hands out the token)
  registry-admin.py pxe-installed URL ADMIN_TOKEN_FILE  lab-node-02's netbooted install reported
      its events up to the pause after the disk phase
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

NODE = "lab-node-01"
MAC = "52:54:00:a4:41:01"
PXE_NODE = "lab-node-02"
PXE_MAC = "52:54:00:a4:41:02"


def call(url, token, method, path, body=None, content_type="application/json"):
    req = urllib.request.Request(url + path, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def must(url, token, method, path, body=None, content_type="application/json"):
    status, out = call(url, token, method, path, body, content_type)
    if status >= 300:
        sys.exit(f"registry: {method} {path} answered {status}: {out.decode(errors='replace')}")
    return out


def failed(what):
    print(f"FAIL  {what}")
    return 1


def main():
    cmd, url, token_file = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    token = open(token_file).read().strip()
    for _ in range(100):  # the registry was just started
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    if cmd == "setup":
        repo = sys.argv[4]
        must(url, token, "PUT", f"/v1/admin/profiles/{NODE}", open(f"{repo}/profiles/{NODE}.toml", "rb").read(), "application/toml")
        must(url, token, "PUT", "/v1/admin/specs/qemu-lab", open(f"{repo}/hardware-specs/qemu-lab.toml", "rb").read(), "application/toml")
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "id_rsa")
            subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "4096", "-N", "", "-C", "root@lab-cluster", "-f", key], check=True)
            must(url, token, "PUT", "/v1/admin/cluster-keys/lab-cluster", open(key, "rb").read(), "text/plain")
        out = must(url, token, "POST", "/v1/admin/nodes", json.dumps({"hostname": NODE, "profile": NODE, "mac": MAC, "ttl_seconds": 6 * 3600}).encode())
        print(json.loads(out)["token"])
        return 0
    if cmd == "arm":
        repo = sys.argv[4]
        name = sys.argv[5] if len(sys.argv) > 5 else PXE_NODE
        mac = {NODE: MAC, PXE_NODE: PXE_MAC}[name]
        must(url, token, "PUT", f"/v1/admin/profiles/{name}", open(f"{repo}/profiles/{name}.toml", "rb").read(), "application/toml")
        out = must(url, token, "POST", "/v1/admin/nodes", json.dumps({"hostname": name, "profile": name, "mac": mac, "ttl_seconds": 6 * 3600}).encode())
        print(json.loads(out)["token"])
        return 0
    if cmd in ("cluster", "rejoined"):
        bad = 0
        first = "create" if cmd == "cluster" else "join"
        for name, action in [(NODE, first), (PXE_NODE, "join")]:
            node = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{name}"))
            status, out = call(url, token, "GET", f"/v1/admin/nodes/{name}/boot")
            boot = json.loads(out) if status == 200 else {}
            cluster = boot.get("cluster") or {}
            print(f"registry: {name} state {node['state']}, cluster step {cluster.get('action')} ok={cluster.get('ok')}: {cluster.get('detail')}")
            if node["state"] != "ready" or cluster.get("action") != action or cluster.get("ok") is not True:
                bad += failed(f"{name}: expected state ready after cluster step {action}")
            if cmd == "rejoined" and name == NODE and "host key(s) of this node added" not in (cluster.get("detail") or ""):
                bad += failed(f"{name}: the rejoin should have put its new host keys into lab-node-02's known_hosts")
        return 1 if bad else 0
    if cmd == "pxe":
        repo = sys.argv[4]
        # an unattended install's consent: the profile pins the drives it destroys (the guest's)
        text = open(f"{repo}/profiles/{PXE_NODE}.toml").read()
        if "\nserials = []\n" not in text:
            return failed(f"profiles/{PXE_NODE}.toml has no 'serials = []' line to pin the lab drives in")
        text = text.replace("\nserials = []\n", '\nserials = ["LABNVME0001", "LABNVME0002"]\n')
        must(url, token, "PUT", f"/v1/admin/profiles/{PXE_NODE}", text.encode(), "application/toml")
        armed = json.loads(must(url, token, "POST", "/v1/admin/nodes", json.dumps({"hostname": PXE_NODE, "profile": PXE_NODE, "mac": PXE_MAC, "pxe": True, "ttl_seconds": 6 * 3600}).encode()))
        if "token" in armed or "window_closes_at" not in armed:
            return failed(f"arming a PXE node should open a window and hand out no token: {armed}")
        # what anyone on the network gets: no token, no host name; an unknown MAC boots on
        status, script = call(url, None, "GET", f"/ipxe/{PXE_MAC}")
        status2, other = call(url, None, "GET", "/ipxe/52:54:00:a4:41:99")
        script, other = script.decode(errors="replace"), other.decode(errors="replace")
        print(f"registry: /ipxe/{PXE_MAC} ({status}): {' '.join(script.split()[:12])} ...")
        if status != 200 or "keel.token" in script or PXE_NODE in script or "keel.registry=" not in script:
            return failed("the iPXE script of an armed PXE node must boot keel-live and carry no token and no host name")
        if status2 != 200 or not other.rstrip().endswith("exit"):
            return failed(f"an unknown MAC should get the script that boots the next device, got {status2}: {other}")
        return 0
    if cmd == "pxe-installed":
        node = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{PXE_NODE}"))
        events = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{PXE_NODE}/events?limit=10000"))["events"]
        print(f"registry: {PXE_NODE} state {node['state']}, {len(events)} events, last {events[-1].get('event') if events else None}, {node.get('refusals')} refused enrollments")
        if node.get("refusals") != 0 or node.get("enrolled_at") is None:
            return failed("the netbooted node should have enrolled by its hardware at the first try")
        if not events or events[-1].get("event") != "paused":
            return failed("the netbooted install's events should end with its pause after the disk phase")
        return 0
    node = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{NODE}"))
    bad = 0
    if cmd == "installed":
        report = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{NODE}/report"))
        print(f"registry: {NODE} state {node['state']}, {node['events']} events, report result {report.get('result')}")
        keys, pools = report.get("ssh_host_keys", []), report.get("pools", [])
        for k in keys:
            print(f"registry: host key {k}")
        for p in pools:
            print(f"registry: pool {p}")
        if node["state"] != "installed" or report.get("result") != "ok":
            bad += failed(f"expected state installed and result ok, found {node['state']} / {report.get('result')}")
        if not any(k.startswith("ssh-ed25519 SHA256:") for k in keys):
            bad += failed("the report has no ed25519 host key fingerprint")
        if sorted(p.split()[0] for p in pools) != ["datapool", "rpool"] or not all(" ONLINE " in p for p in pools):
            bad += failed(f"the report should show rpool and datapool ONLINE: {pools}")
        events = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{NODE}/events?limit=10000"))["events"]
        seqs = [e["seq"] for e in events]
        if seqs != list(range(1, len(seqs) + 1)) or not events or events[-1].get("event") != "finished":
            bad += failed(f"events should be 1..N without gaps, the last one 'finished': {len(seqs)} events, last {events[-1] if events else None}")
    elif cmd == "booted":
        report = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{NODE}/report"))
        status, out = call(url, token, "GET", f"/v1/admin/nodes/{NODE}/boot")
        if status != 200:
            return failed(f"no first-boot report ({status}: {out.decode(errors='replace')})")
        boot = json.loads(out)
        print(f"registry: {NODE} state {node['state']}, first boot {boot.get('phase')}, cluster {json.dumps(boot.get('cluster'))}")
        if node["state"] != "ready" or boot.get("phase") != "ready":
            bad += failed(f"expected the first boot ready, found state {node['state']}, phase {boot.get('phase')}")
        if boot.get("ssh_host_keys") != report.get("ssh_host_keys") or not boot.get("ssh_host_keys"):
            bad += failed(f"host keys differ: install report {report.get('ssh_host_keys')}, first boot {boot.get('ssh_host_keys')}")
        else:
            print(f"registry: the booted node's host keys are the installed ones ({len(boot['ssh_host_keys'])})")
    elif cmd == "disk-replaced":
        events = json.loads(must(url, token, "GET", f"/v1/admin/nodes/{NODE}/events?limit=10000"))["events"]
        found = [e for e in events if e.get("event") == "disk-replaced"]
        for e in found:
            print(f"registry: {NODE} disk-replaced {e.get('old_serial')} -> {e.get('new_serial')} (survivor {e.get('survivor_serial')}, {e.get('seconds')} s)")
        # one event per replace (the node's and keel-live's from the rescue replace other drives)
        want = (sys.argv[4], sys.argv[5])
        n = [(e.get("old_serial"), e.get("new_serial")) for e in found].count(want)
        if n != 1:
            bad += failed(f"expected one disk-replaced event {want[0]} -> {want[1]}, found {n}")
        if node["state"] != "ready":
            bad += failed(f"the node's state should stay ready, found {node['state']}")
    else:
        sys.exit(f"unknown command {cmd}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
