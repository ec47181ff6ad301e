#!/usr/bin/env python3
"""RESULT lines (tests/bench/README.md) from ramp.py's ramp.json files and
calls.sh's SUMMARY of an overload run.

  results.py routed RAMP_JSON
  results.py overload SUMMARY_FILE KNEE
  results.py signalling ACD_RAMP_JSON KAMAILIO_RAMP_JSON
"""

import json
import sys

# Asterisk's app_queue is not packaged for Debian 12: its figure is the
# published one issue 10 quotes for this machine class.
ASTERISK_QUEUE_CALLS_PER_S = 120
ASTERISK_SOURCE = ("issue 10: Asterisk app_queue, 110-130 routed calls/s measured on this machine class "
                   "(published figure, not measured in this run: no Debian package)")


def emit(bench, metric, subject, value, unit, goal=None, detail=None, published=False):
    if not isinstance(value, (int, float)):
        print(f"results.py: {bench}/{metric}/{subject}: no figure ({value!r}), no RESULT line", file=sys.stderr)
        return
    line = {"bench": bench, "metric": metric, "subject": subject, "value": value, "unit": unit}
    if goal:
        line["goal"] = goal
    if published:
        line["published"] = True
    line["detail"] = detail or {}
    print("RESULT " + json.dumps(line))


def load(path):
    with open(path) as f:
        return json.load(f)


def steps_brief(ramp):
    """The ramp's steps, one short record each (the full ones stay in ramp.json)."""
    out = []
    for st in ramp["steps"]:
        s = st.get("summary") or {}
        out.append({k: v for k, v in {
            "rate": st["rate"], "calls": st["calls"], "passed": st["passed"],
            "offered": s.get("offered_rate"), "answered": s.get("answered"), "refused": s.get("refused"),
            "failed": s.get("failed"), "retrans": s.get("retrans"), "invite_200_ms": s.get("invite_200_ms"),
            "call_ms": s.get("call_ms"), "cpu_ms_per_call": s.get("cpu_ms_per_call"),
            "sipp_cpu_ms_per_call": s.get("sipp_cpu_ms_per_call"), "max_rss_kb": s.get("max_rss_kb"),
            "loadavg": st.get("loadavg_before"), "why": "; ".join(st.get("reasons", [])) or None,
        }.items() if v is not None})
    return out


def knee_detail(ramp):
    k = ramp.get("at_knee") or {}
    return {"flow": ramp["flow"], "agents": ramp.get("agents"), "kamailio_children": ramp.get("kamailio_children"),
            "admission": ramp.get("admission"), "talk_s": ramp.get("talk_s"),
            "secs_per_step": ramp.get("secs_per_step"), "first_fail": ramp.get("first_fail"),
            "rtp_ports": k.get("rtp_ports"), "rtp_needed_at_knee": k.get("rtp_needed"),
            "rust_log": k.get("rust_log"),
            "command_at_knee": next((s["cmd"] for s in ramp["steps"] if s["rate"] == ramp["knee"]), None),
            "steps": steps_brief(ramp)}


def passed_at(ramp, rate):
    return next((st.get("summary") for st in ramp["steps"] if st["rate"] == rate and st["passed"]), None)


def cpu_lines(bench, ramp, subject, rate=None):
    """CPU per call of the subject and of SIPp at `rate` (default: the knee)."""
    rate = ramp["knee"] if rate is None else rate
    k = passed_at(ramp, rate) or {}
    if k.get("cpu_ms_per_call") is None:
        return
    detail = {"rate": rate, "cpu_s": k.get("cpu_s"), "calls": k.get("calls"),
              "how": "utime+stime from /proc/<pid>/stat over the trunk phase (Kamailio: all its processes)"}
    emit(bench, "cpu_ms_per_call", subject, k["cpu_ms_per_call"], "ms", detail=detail)
    emit(bench, "sipp_cpu_ms_per_call", subject, k.get("sipp_cpu_ms_per_call"), "ms",
         detail={"rate": rate, "how": "both SIPps (trunk UAC + agent UAS), bash `times` of the waited children"})


def routed(path):
    ramp = load(path)
    emit("routed", "knee_calls_per_s", "acd", ramp["knee"], "calls/s", ">=1500", knee_detail(ramp))
    emit("routed", "knee_calls_per_s", "asterisk", ASTERISK_QUEUE_CALLS_PER_S, "calls/s",
         detail={"source": ASTERISK_SOURCE, "range": "110-130"}, published=True)
    cpu_lines("routed", ramp, "acd")
    k = ramp.get("at_knee") or {}
    if k.get("max_rss_kb") is not None:
        emit("routed", "max_rss_kb_at_knee", "acd", k["max_rss_kb"], "KiB", detail={"rate": ramp["knee"]})


def overload(path, knee):
    with open(path) as f:
        s = next((json.loads(l[len("SUMMARY "):]) for l in f if l.startswith("SUMMARY ")), None)
    if s is None:
        print("results.py: no SUMMARY line in the overload run", file=sys.stderr)
        return 2
    detail = {k: s.get(k) for k in ("calls", "answered", "refused", "failed", "failed_why", "retrans",
                                    "agent_failed", "agent_retrans", "call_worst_ms",
                                    "invite_200_ms", "invite_503_ms", "call_ms", "expected_call_ms",
                                    "cpu_ms_per_call", "sipp_cpu_ms_per_call", "shed", "refused_media",
                                    "overload_drops", "verdict", "load_before", "max_rss_kb")}
    detail["knee"] = int(knee)
    emit("overload", "offered_calls_per_s", "acd", s["rate"], "calls/s", detail=detail)
    # Failed at either side (a call failing on both counts once); 503s are not failures here.
    trunk_failed = (s.get("failed") or 0) + s["calls"] - (s.get("ok") or 0)
    failed = max(trunk_failed, s.get("agent_failed") or 0)
    emit("overload", "failed_calls", "acd", failed, "calls", "<=0",
         detail={"verdict": s.get("verdict"), "trunk_failed": trunk_failed, "agent_failed": s.get("agent_failed"),
                 "agent_failed_why": s.get("agent_failed_why")})
    emit("overload", "retransmissions", "acd", (s.get("retrans") or 0) + (s.get("agent_retrans") or 0), "messages",
         detail={"trunk": s.get("retrans"), "invite": s.get("invite_retrans"), "agent": s.get("agent_retrans")})
    emit("overload", "refused_503", "acd", s.get("refused"), "calls", detail={"shed": s.get("shed")})
    emit("overload", "accepted_invite_200_ms", "acd", s.get("invite_200_ms"), "ms", "<=100")
    emit("overload", "accepted_call_late_ms", "acd",
         None if s.get("call_ms") is None else s["call_ms"] - s["expected_call_ms"], "ms", "<=500",
         detail={"call_ms": s.get("call_ms"), "expected_call_ms": s.get("expected_call_ms")})
    return 0


def signalling(acd_path, kam_path):
    acd, kam = load(acd_path), load(kam_path)
    emit("signalling", "knee_calls_per_s", "acd", acd["knee"], "calls/s", ">=2000", knee_detail(acd))
    emit("signalling", "knee_calls_per_s", "kamailio", kam["knee"], "calls/s", detail=knee_detail(kam))
    ratio = round(acd["knee"] / kam["knee"], 2) if kam["knee"] else None
    emit("signalling", "ratio_to_kamailio", "acd", ratio, "x", ">=0.8",
         detail={"acd": acd["knee"], "kamailio": kam["knee"]})
    # CPU per call depends on the rate (fixed costs spread over more calls):
    # compare both at the highest rate both passed.
    both = [st["rate"] for st in acd["steps"] if st["passed"] and passed_at(kam, st["rate"])]
    common = max(both) if both else None
    cpu_lines("signalling", acd, "acd", common)
    cpu_lines("signalling", kam, "kamailio", common)
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "routed":
        return routed(argv[2]) or 0
    if len(argv) == 4 and argv[1] == "overload":
        return overload(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "signalling":
        return signalling(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
