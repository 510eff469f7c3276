#!/usr/bin/python3
"""Runs the real ./pktrace and corrupts one event of its JSON output per $MUTATION.

For checking that the end-to-end tests catch wrong output (stdout mode only, not -o):
  PKTRACE_E2E_BIN=tests/e2e/mutant.py MUTATION=window /usr/bin/python3 tests/e2e/run.py -k ipv4
Every mutation must make the tests that see the mutated event fail.
"""
import json, os, signal, subprocess, sys
real = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pktrace")
mut = os.environ.get("MUTATION", "")
p = subprocess.Popen([real] + sys.argv[1:], stdout=subprocess.PIPE)
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, lambda n, f: p.send_signal(n))
n = 0
done = False
for line in p.stdout:
    n += 1
    try:
        ev = json.loads(line)
    except ValueError:
        sys.stdout.buffer.write(line); continue
    md = ev["args"][0]["value"]; tcp = ev["args"][1]["value"]
    out = [ev]
    if not done:
        if mut == "drop" and n == 5: out = []; done = True
        elif mut == "dup" and n == 5: out = [ev, ev]; done = True
        elif mut == "window" and n == 5: tcp["window"] += 1; done = True
        elif mut == "checksum" and n == 6: tcp["checksum"] ^= 1; done = True
        elif mut == "urgent" and tcp["URG"]: tcp["urgent"] += 1; done = True
        elif mut == "ece" and tcp["SYN"] and tcp["ECE"]: tcp["ECE"] = False; done = True
        elif mut == "cwr" and tcp["CWR"]: tcp["CWR"] = False; done = True
        elif mut == "rst" and tcp["RST"]: out = []; done = True
        elif mut == "pid" and n == 4: ev["processId"] += 1; done = True
        elif mut == "name" and n == 20: ev["processName"] = "x"; done = True
        elif mut == "ppid" and n == 20: ev["parentProcessId"] = 1; done = True
        elif mut == "iface" and n == 3: md["iface"] += "x"; done = True
        elif mut == "dir" and n == 3: md["direction"] = "ingress" if md["direction"] == "egress" else "egress"; done = True
        elif mut == "len" and n == 7: md["packet_len"] += 1; done = True
        elif mut == "dataoff" and n == 7: tcp["dataOffset"] += 1; done = True
        elif mut == "srcport" and n == 7: tcp["srcPort"] += 1; done = True
        elif mut == "ip6" and ":" in md["src_ip"]: md["src_ip"] = md["src_ip"].replace("::", ":0:"); done = True
        elif mut == "cid" and ev["containerId"]: ev["containerId"] = ""; done = True
        elif mut == "cgid" and n == 2: ev["cgroupId"] += 1; done = True
        elif mut == "ts" and n == 2: ev["timestamp"] += 3 * 10**9; done = True
        elif mut == "type" and n == 2: tcp["seq"] = str(tcp["seq"]); done = True
        elif mut == "key" and n == 2: ev["extra"] = 1; done = True
    for e in out:
        sys.stdout.write(json.dumps(e, separators=(",", ":")) + "\n")
sys.stdout.flush()
sys.exit(p.wait())
