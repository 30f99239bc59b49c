#!/usr/bin/env python3
"""Where a package pass spent its time, from the target's /var/log/dpkg.log (one second
resolution): the span of each dpkg run, the unpack and configure time per package (from its
"unpack"/"configure" line to the next status change of any package), the slowest ones.
    dpkg-times.py DPKG_LOG [N]"""
import sys
from datetime import datetime

def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    events = []
    for line in open(sys.argv[1], errors="replace"):
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            t = datetime.strptime(parts[0] + " " + parts[1], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        events.append((t, parts[2], " ".join(parts[3:])))
    if not events:
        print("dpkg-times: no dated lines")
        return 1
    # unpack: "install"/"upgrade" to "status unpacked"; configure and trigger processing:
    # "configure"/"trigproc" to "status installed" (maintainer scripts included)
    spent = {"unpack": {}, "configure": {}, "trigproc": {}}
    began = {}
    for t, action, rest in events:
        words = rest.split()
        if action in ("install", "upgrade") and words:
            began[("unpack", words[0])] = t
        elif action in ("configure", "trigproc") and words:
            began[(action, words[0])] = t
        elif action == "status" and len(words) >= 2:
            state, pkg = words[0], words[1]
            phase = {"unpacked": ["unpack"], "installed": ["configure", "trigproc"]}.get(state, [])
            for ph in phase:
                if (ph, pkg) in began:
                    name = pkg.split(":")[0]
                    spent[ph][name] = spent[ph].get(name, 0) + (t - began.pop((ph, pkg))).total_seconds()
    span = (events[-1][0] - events[0][0]).total_seconds()
    print(f"dpkg: {span:.0f} s from the first to the last line of {sys.argv[1]}")
    for action, per in spent.items():
        print(f"  {action:9} {sum(per.values()):6.0f} s over {len(per)} packages")
    rows = sorted(((s, a, p) for a, per in spent.items() for p, s in per.items()), reverse=True)[:top]
    print(f"  slowest {top}:")
    for s, a, p in rows:
        print(f"    {s:5.0f} s  {a:9}  {p}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
