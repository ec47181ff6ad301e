#!/usr/bin/env python3
"""The run's record and table (tests/bench/run.sh).

Reads OUT/machine.txt (key=value), OUT/benches.txt (one line per bench
script: name status rc loadavg_before loadavg_after wall_s) and
OUT/results.txt (RESULT lines), appends ONE JSON object to the history file
(never rewriting earlier lines), prints the table

  bench | metric | acd | anchor | acd/anchor | goal | met? | previous acd

and writes it as Markdown to OUT/table.md. "previous acd" is the figure of
the latest earlier run in the history that has it (quick runs are compared
with quick runs only).
"""

import argparse
import json
import os
import re

BENCH_ORDER = ["routed", "signalling", "media", "memory", "overload"]


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                out[k] = v
    return out


def read_benches(path):
    out = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 6:
                out[p[0]] = {"status": p[1], "rc": None if p[2] == "-" else int(p[2]),
                             "loadavg_before": p[3].replace("/", " "), "loadavg_after": p[4].replace("/", " "),
                             "wall_s": int(p[5])}
    return out


def read_results(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT {"):
                try:
                    out.append(json.loads(line[len("RESULT "):]))
                except json.JSONDecodeError:
                    pass
    return out


def goal_met(goal, value):
    m = re.fullmatch(r"\s*(>=|<=|<|>)\s*(-?[0-9.]+)\s*", goal or "")
    if not m or not isinstance(value, (int, float)):
        return None
    op, n = m.group(1), float(m.group(2))
    return {">=": value >= n, "<=": value <= n, ">": value > n, "<": value < n}[op]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def previous(history, quick, bench, metric):
    for run in reversed(history):
        if bool(run.get("quick")) != quick:
            continue
        for r in run.get("results", []):
            if r.get("bench") == bench and r.get("metric") == metric and r.get("subject") == "acd":
                return r.get("value")
    return None


def rows(results, history, quick):
    keys = []
    for r in results:
        k = (r.get("bench"), r.get("metric"))
        if k not in keys:
            keys.append(k)
    keys.sort(key=lambda k: BENCH_ORDER.index(k[0]) if k[0] in BENCH_ORDER else len(BENCH_ORDER))
    out = []
    for bench, metric in keys:
        mine = [r for r in results if (r.get("bench"), r.get("metric")) == (bench, metric)]
        acd = next((r for r in mine if r.get("subject") == "acd"), None)
        anchor = next((r for r in mine if r.get("subject") != "acd"), None)
        unit = (acd or anchor or {}).get("unit", "")
        a = acd.get("value") if acd else None
        b = anchor.get("value") if anchor else None
        ratio = round(a / b, 2) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
        goal = (acd or {}).get("goal")
        met = goal_met(goal, a)
        anchor_s = "-"
        if anchor:
            anchor_s = f"{fmt(b)} ({anchor['subject']}{', published' if anchor.get('published') else ''})"
        out.append([bench, f"{metric} [{unit}]", fmt(a), anchor_s, fmt(ratio), goal or "-",
                    {True: "yes", False: "NO", None: "-"}[met], fmt(previous(history, quick, bench, metric))])
    return out


HEAD = ["bench", "metric", "acd", "anchor", "acd/anchor", "goal", "met?", "previous acd"]


def text_table(rs):
    w = [max(len(str(x)) for x in col) for col in zip(HEAD, *rs)] if rs else [len(h) for h in HEAD]
    line = lambda r: " | ".join(str(x).ljust(n) for x, n in zip(r, w))
    return "\n".join([line(HEAD), "-+-".join("-" * n for n in w)] + [line(r) for r in rs])


def md_table(rs, run):
    m = run["machine"]
    head = (f"Run {m.get('date')} ({'quick pass' if run['quick'] else 'full'}), acd {m.get('acd_rev')}"
            f"{' (dirty)' if m.get('acd_dirty') == 'true' else ''}; {m.get('cpu')}, {m.get('cores')} cores, "
            f"{int(m.get('memory_kb', '0') or 0) // 1024} MiB, Linux {m.get('kernel')}; {m.get('rustc')}; "
            f"{m.get('sipp')}; {m.get('kamailio')}; rtpengine {m.get('rtpengine')}")
    lines = [head, "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rs]
    lines += ["", "| bench script | status | load avg before | after | wall s |", "|---|---|---|---|---|"]
    for name, b in run["benches"].items():
        lines.append(f"| {name} | {b['status']} | {b['loadavg_before']} | {b['loadavg_after']} | {b['wall_s']} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--history", required=True)
    p.add_argument("--only", default="")
    a = p.parse_args()
    machine = read_kv(os.path.join(a.out, "machine.txt"))
    quick = machine.get("quick") == "1"
    only = [b for b in a.only.split(",") if b]
    results = [r for r in read_results(os.path.join(a.out, "results.txt")) if not only or r.get("bench") in only]
    history = []
    if os.path.exists(a.history):
        with open(a.history) as f:
            for line in f:
                try:
                    history.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    with open("/proc/loadavg") as f:
        machine["loadavg_end"] = " ".join(f.read().split()[:3])
    run = {"date": machine.get("date"), "quick": quick, "only": only, "machine": machine,
           "benches": read_benches(os.path.join(a.out, "benches.txt")), "results": results}
    rs = rows(results, history, quick)
    with open(a.history, "a") as f:
        f.write(json.dumps(run, separators=(",", ":")) + "\n")
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md_table(rs, run))
    print(text_table(rs))
    for name, b in run["benches"].items():
        if b["status"] == "not-run":
            print(f"{name}: not run (its script is not there)")
            continue
        print(f"{name}: {b['status']} (exit {b['rc']}), load avg {b['loadavg_before']} -> {b['loadavg_after']}, "
              f"{b['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
