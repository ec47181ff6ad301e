#!/usr/bin/env python3
"""Ramp of offered call rates to the knee, one tests/load/calls.sh run per step.

Used by routed.sh and signalling.sh. Each step is a fresh subject (acd or
Kamailio) with a bounded number of calls (~--secs worth, within
--min-calls..--max-calls). A step passes when

- failed calls (not answered and completed at the trunk, 503s included, or
  failed at the agent side; a call failing on both counts once) stay under
  0.1 % of the calls, and so do SIPp's retransmissions (both sides),
- the answered calls kept their timing: INVITE->200 average <= --max-200-ms
  and call length average <= the expected length + --max-late-ms,
- the generator really offered the rate: it had created every call within
  10 % + 1 s of CALLS / RATE (SIPp shares the 2 cores).

Calls still open 15 s after the last one should have ended are given up
(calls.sh -T 15) and count as not completed.

The ramp stops at the first failing step; the knee is the highest passing
rate, refined by bisection between it and the first failing one
(--refine times, to a multiple of 50). Prints one line per step and, last,
`RAMP {json}` (also written to OUT/ramp.json).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CALLS_SH = os.path.join(HERE, "..", "load", "calls.sh")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subject", default="acd", choices=["acd", "kamailio"])
    p.add_argument("--flow", default="prompt", choices=["prompt", "direct"])
    p.add_argument("--rates", default="200,400,600,800,1000,1200,1500,2000,2500,3000")
    p.add_argument("--secs", type=float, default=10.0, help="seconds of calls per step")
    p.add_argument("--min-calls", type=int, default=500)
    p.add_argument("--max-calls", type=int, default=30000)
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--talk", type=int, default=0)
    p.add_argument("--port-base", type=int, default=36000)
    p.add_argument("--rtp-ports", type=int, default=3000)
    p.add_argument("--rtp-min", type=int, default=None, help="first RTP port [calls.sh: port base + 1000]")
    p.add_argument("--children", type=int, default=2, help="Kamailio's UDP workers")
    p.add_argument("--admission", action="append", default=[], help="calls.sh -a KEY=VALUE")
    p.add_argument("--refine", type=int, default=2)
    p.add_argument("--max-200-ms", type=float, default=100.0)
    p.add_argument("--max-late-ms", type=float, default=500.0)
    p.add_argument("--out", required=True)
    return p.parse_args()


def step_calls(args, rate):
    return int(min(args.max_calls, max(args.min_calls, rate * args.secs)))


def run_calls(args, rate, calls, extra, name):
    """One calls.sh run; returns (exit code, SUMMARY dict or None, command)."""
    log_dir = os.path.join(args.out, name)
    cmd = [CALLS_SH, "-P", str(args.port_base), "-k", str(args.rtp_ports), "-r", str(rate),
           "-c", str(calls), "-t", str(args.talk), "-w", "0", "-T", "15", "-f", args.flow, "-S", args.subject,
           "-o", log_dir]
    if args.rtp_min is not None:
        cmd += ["-M", str(args.rtp_min)]
    if args.subject == "acd":
        cmd += ["-n", str(args.agents)]
        for kv in args.admission:
            cmd += ["-a", kv]
    else:
        cmd += ["-j", str(args.children)]
    cmd += extra
    bound = calls / rate + args.talk + 400
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=bound, check=False)
        out, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        raw = e.stdout or ""
        out, rc = (raw.decode() if isinstance(raw, bytes) else raw), 124
    os.makedirs(log_dir, exist_ok=True)
    with open(os.path.join(log_dir, "calls.sh.out"), "w") as f:
        f.write(out)
    summary = None
    for line in out.splitlines():
        if line.startswith("SUMMARY "):
            try:
                summary = json.loads(line[len("SUMMARY "):])
            except json.JSONDecodeError:
                summary = None
    # No machine paths in the results: the script as from the repository, the logs as OUT/<step>.
    shown = " ".join(["tests/load/calls.sh"] + [f"OUT/{name}" if c == log_dir else c for c in cmd[1:]])
    return rc, summary, shown


def nz(v):
    return v if isinstance(v, (int, float)) else 0


def judge(s, rate):
    """(passed, bad calls, reasons) of one step's SUMMARY."""
    calls = s["calls"]
    completed = nz(s["ok"]) - nz(s["refused"])
    # A call that failed on both sides counts once.
    failures = max(calls - completed, nz(s["agent_failed"]))
    retrans = nz(s["retrans"]) + nz(s["agent_retrans"])
    reasons = []
    if failures >= calls * 0.001:
        reasons.append(f"{failures} failed ({calls - completed} not completed at the trunk: 503 {nz(s['refused'])}, "
                       f"failed {nz(s['failed'])} {s['failed_why']}; agent side failed {nz(s['agent_failed'])} "
                       f"{s['agent_failed_why']})")
    if retrans >= calls * 0.001:
        reasons.append(f"{retrans} retransmissions (trunk {nz(s['retrans'])}, agent {nz(s['agent_retrans'])})")
    if s["invite_200_ms"] is None or s["invite_200_ms"] > ARGS.max_200_ms:
        reasons.append(f"INVITE->200 avg {s['invite_200_ms']} ms > {ARGS.max_200_ms}")
    if s["call_ms"] is None or s["call_ms"] > s["expected_call_ms"] + ARGS.max_late_ms:
        reasons.append(f"calls lasted {s['call_ms']} ms, expected ~{s['expected_call_ms']}")
    # send_s: the 1-s stats row by which SIPp had created every call (up to 1 s late).
    send_s = s.get("send_s")
    if isinstance(send_s, (int, float)) and send_s > 0:
        s["offered_rate"] = round(calls / send_s, 1)
    if not isinstance(send_s, (int, float)) or send_s > calls / rate * 1.1 + 1.0:
        reasons.append(f"SIPp did not offer the rate: all calls created after {send_s} s")
    if s.get("alive") != "yes":
        reasons.append("subject died")
    return not reasons, failures + retrans, reasons


def step(args, rate, steps):
    calls = step_calls(args, rate)
    load = open("/proc/loadavg").read().split()[:3]
    t0 = time.time()
    rc, s, cmd = run_calls(args, rate, calls, [], f"{args.subject}-{args.flow}-r{rate}")
    rec = {"rate": rate, "calls": calls, "rc": rc, "cmd": cmd, "loadavg_before": " ".join(load),
           "wall_s": round(time.time() - t0, 1)}
    if s is None:
        rec.update(passed=False, reasons=[f"calls.sh exit {rc} without a SUMMARY (setup failure?)"])
    else:
        ok, bad, reasons = judge(s, rate)
        rec.update(passed=ok, bad=bad, reasons=reasons, summary=s)
    steps.append(rec)
    s = rec.get("summary") or {}
    print(f"[ramp {args.subject}/{args.flow}] {rate:>5}/s x {calls:>6}: "
          f"{'PASS' if rec['passed'] else 'FAIL'} "
          f"answered {s.get('answered')} 503 {s.get('refused')} failed {s.get('failed')} "
          f"retrans {s.get('retrans')} 200 in {s.get('invite_200_ms')} ms call {s.get('call_ms')} ms "
          f"offered {s.get('offered_rate')}/s cpu {s.get('cpu_ms_per_call')} ms/call "
          f"sipp {s.get('sipp_cpu_ms_per_call')} ms/call load [{rec['loadavg_before']}]"
          + ("" if rec["passed"] else f" -- {'; '.join(rec['reasons'])}"), flush=True)
    return rec["passed"]


def main():
    args = ARGS
    os.makedirs(args.out, exist_ok=True)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    steps = []
    knee, first_fail = None, None
    for rate in rates:
        if step(args, rate, steps):
            knee = rate
        else:
            first_fail = rate
            break
    # Bisection between the last pass and the first failure (a bounded number of steps).
    lo = knee or 0
    hi = first_fail
    for _ in range(args.refine if hi else 0):
        mid = (lo + hi) // 2 // 50 * 50
        if mid <= lo or mid >= hi:
            break
        if step(args, mid, steps):
            lo = knee = mid
        else:
            hi = mid
    at_knee = next((s for s in steps if s["rate"] == knee and s["passed"]), None)
    result = {"subject": args.subject, "flow": args.flow, "knee": knee or 0, "first_fail": hi,
              "agents": args.agents if args.subject == "acd" else None,
              "kamailio_children": args.children if args.subject == "kamailio" else None,
              "admission": args.admission, "talk_s": args.talk, "secs_per_step": args.secs,
              "at_knee": (at_knee or {}).get("summary"), "steps": steps}
    with open(os.path.join(args.out, "ramp.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("RAMP " + json.dumps(result))


ARGS = parse_args()

if __name__ == "__main__":
    sys.exit(main())
