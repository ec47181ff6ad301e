#!/usr/bin/env python3
"""Regenerates the seed corpus in fuzz/corpus/ from the project's own messages.

SIP seeds are the messages our SIPp scenarios send (tests/sipp/**/*.xml) with the
SIPp placeholders filled in, plus hand-written messages in the spirit of RFC 4475
(folding, compact forms, escapes, bad lengths …; written for this project, not
copied from the RFC). SDP, RTP and Digest seeds are built here. Deterministic:
running it twice gives the same files. Files named `crash-*` / `regress-*` are
findings and are kept as they are.

    python3 fuzz/tools/make_corpus.py
"""
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"

LOCAL_IP, REMOTE_IP = "192.0.2.20", "192.0.2.10"
SUBST = {
    "service": "1000", "remote_ip": REMOTE_IP, "remote_port": "5060",
    "transport": "UDP", "local_ip": LOCAL_IP, "local_port": "5062",
    "pid": "4242", "call_number": "1", "caller": "5551234",
    "call_id": "1-4242@192.0.2.20", "local_ip_type": "4", "rtpport": "6000",
    "contact_port": "5062", "next_url": "sip:1000@192.0.2.10:5060",
    "routes": "Route: <sip:192.0.2.10;lr;du=sip:10.0.0.1:5070>",
    "last_To:": "To: <sip:1000@192.0.2.10:5060>;tag=as1f2e",
    "last_From:": 'From: "Trunk Caller" <sip:5551234@192.0.2.20:5062>;tag=4242SIPpTag001',
    "last_Via:": "Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-4242-1-0;received=192.0.2.20;rport=5062",
    "last_Call-ID:": "Call-ID: 1-4242@192.0.2.20",
    "last_CSeq:": "CSeq: 1 INVITE",
    "authentication": 'Authorization: Digest username="agent1", realm="acd.example.com", '
                      'nonce="5f5e100.0123456789abcdef0123456789abcdef", uri="sip:acd.example.com", '
                      'response="0123456789abcdef0123456789abcdef", algorithm=MD5, cnonce="c0ffee", '
                      'qop=auth, nc=00000001',
    "$invite_cseq": "1", "$local_party": "<sip:1000@192.0.2.10>;tag=as1f2e",
    "$remote_party": "<sip:5551234@192.0.2.20>;tag=4242SIPpTag001",
}


def subst(text):
    def one(m):
        key = m.group(1)
        if key.startswith("branch"):
            return "z9hG4bK-4242-1-" + (key[len("branch"):].lstrip("-") or "0")
        return SUBST.get(key, m.group(0))
    return re.sub(r"\[([^\]\s]+)\]", one, text)


def sipp_messages(path):
    """The <send> CDATA blocks of one scenario, as wire messages with CRLF."""
    xml = path.read_text()
    out = []
    for block in re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", xml, re.S):
        lines = [l.strip() for l in subst(block).strip("\n").split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        if not lines:
            continue
        try:
            blank = lines.index("")
        except ValueError:
            blank = len(lines)
        head = [l for l in lines[:blank] if l]
        body = "".join(l + "\r\n" for l in lines[blank + 1:])
        msg = "\r\n".join(head) + "\r\n\r\n" + body
        msg = msg.replace("[len]", str(len(body.encode())))
        out.append(msg.encode())
    return out


SEEN = {}


def write(target, name, data):
    """Writes one seed unless the same bytes are already in the target's corpus."""
    data = data if isinstance(data, bytes) else data.encode()
    seen = SEEN.setdefault(target, set())
    if data in seen:
        return
    seen.add(data)
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def clean(target):
    d = CORPUS / target
    if d.exists():
        for f in d.iterdir():
            if not f.name.startswith(("crash-", "regress-")):
                f.unlink()


INVITE = (
    "INVITE sip:1000@192.0.2.10 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:1000@192.0.2.10>\r\n"
    'From: "Alice" <sip:alice@192.0.2.20>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710@192.0.2.20\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.20:5062>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {len}\r\n\r\n{body}"
)

SDP_SIPP = (
    "v=0\r\no=caller 2890844526 2890844526 IN IP4 192.0.2.20\r\ns=-\r\n"
    "c=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)


def invite(body="", **repl):
    m = INVITE.format(len=len(body.encode()), body=body)
    for k, v in repl.items():
        m = m.replace(k, v)
    return m


# Hand-written SIP edge cases (RFC 3261 §7 / RFC 4475 themes).
SIP_CASES = {
    "invite_sdp": invite(SDP_SIPP),
    "compact_forms": "INVITE sip:1000@192.0.2.10 SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK1\r\n"
                     "f: <sip:a@x>;tag=1\r\nt: sip:1000@192.0.2.10\r\ni: cid1\r\nCSeq: 1 INVITE\r\n"
                     "m: <sip:a@192.0.2.20>\r\nc: application/sdp\r\nl: 0\r\n\r\n",
    "folded_headers": "OPTIONS sip:1000@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5062\r\n"
                      "  ;branch=z9hG4bKfold\r\nTo: <sip:1000@192.0.2.10>\r\nFrom: <sip:a@x>\r\n\t;tag=9\r\n"
                      "Call-ID: fold@x\r\nCSeq: 8\r\n   OPTIONS\r\nSubject: a\r\n  \r\n b\r\nContent-Length: 0\r\n\r\n",
    "lf_only": invite().replace("\r\n", "\n"),
    "leading_crlf": "\r\n\r\n" + invite(),
    "multi_via": invite().replace(
        "Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK776asdhds;rport\r\n",
        "Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK776asdhds;rport , SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKv6\r\n"
        "v: SIP/2.0/TLS proxy.example.com;branch=z9hG4bKp;received=10.0.0.1;rport=1234\r\n"),
    "ipv6": invite().replace("192.0.2.20:5062", "[2001:db8::20]:5062").replace("192.0.2.10", "[2001:db8::10]"),
    "quoted_display": invite().replace('"Alice"', '"Smith, Bob \\"B\\" <x>"'),
    "escaped_uri": invite().replace("sip:1000@192.0.2.10 SIP", "sip:%31000;user=phone?X-H=a%20b@192.0.2.10 SIP"),
    "record_route": "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK1\r\n"
                    "Record-Route: <sip:p1.example.com;lr;du=sip:10.0.0.1:5080>, <sip:p2.example.com;lr>\r\n"
                    "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: rr@x\r\nCSeq: 1 INVITE\r\n"
                    "Contact: <sip:b@192.0.2.10>\r\nContent-Length: 0\r\n\r\n",
    "response_no_reason": "SIP/2.0 180\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\n"
                          "To: <sip:b@y>\r\nCall-ID: nr\r\nCSeq: 1 INVITE\r\n\r\n",
    "content_length_long": invite("v=0\r\n").replace("Content-Length: 5", "Content-Length: 500"),
    "content_length_negative": invite().replace("Content-Length: 0", "Content-Length: -1"),
    "content_length_huge": invite().replace("Content-Length: 0", "Content-Length: 18446744073709551616"),
    "content_length_twice": invite("v=0\r\n").replace("Content-Length: 5\r\n", "Content-Length: 5\r\nl: 3\r\n"),
    "no_content_length_body": invite(SDP_SIPP).replace("Content-Length: %d\r\n" % len(SDP_SIPP), ""),
    "max_forwards_zero": invite().replace("Max-Forwards: 70", "Max-Forwards: 0"),
    "no_branch": invite().replace(";branch=z9hG4bK776asdhds", ""),
    "cseq_mismatch": invite().replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE"),
    "unknown_method": invite().replace("INVITE sip", "NEWMETHOD sip").replace("314159 INVITE", "314159 NEWMETHOD"),
    "lowercase_method": invite().replace("INVITE sip", "invite sip"),
    "tel_uri": invite().replace("INVITE sip:1000@192.0.2.10", "INVITE tel:+15551234"),
    "bad_version": invite().replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia", 1),
    "non_utf8_value": invite().encode().replace(b"Alice", b"Al\xffce"),
    "empty_values": invite().replace("Call-ID: a84b4c76e66710@192.0.2.20", "Call-ID:").replace("Max-Forwards: 70", "X-Empty:"),
    "tabs_and_spaces": invite().replace(": ", " :\t  ").replace("SIP/2.0/UDP ", "SIP / 2.0 / UDP\t"),
    "long_value": invite().replace("Max-Forwards: 70", "X-Long: " + "a" * 3000),
    "many_headers": invite().replace("Max-Forwards: 70\r\n", "X-A: 1\r\n" * 300),
    "register_auth": "REGISTER sip:acd.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.30:5064;branch=z9hG4bKr1\r\n"
                     "From: <sip:agent1@acd.example.com>;tag=r1\r\nTo: <sip:agent1@acd.example.com>\r\n"
                     "Call-ID: reg1@x\r\nCSeq: 2 REGISTER\r\nContact: <sip:agent1@192.0.2.30:5064>;expires=3600\r\n"
                     "Authorization: " + SUBST["authentication"].split(": ", 1)[1] + "\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
    "contact_star": "REGISTER sip:acd.example.com SIP/2.0\r\nVia: SIP/2.0/UDP h:5064;branch=z9hG4bKr2\r\n"
                    "From: <sip:agent1@acd.example.com>;tag=r2\r\nTo: <sip:agent1@acd.example.com>\r\n"
                    "Call-ID: reg2@x\r\nCSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
    "ack_no_body": "ACK sip:1000@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKa\r\n"
                   "From: <sip:a@x>;tag=1\r\nTo: <sip:1000@192.0.2.10>;tag=2\r\nCall-ID: ack@x\r\nCSeq: 1 ACK\r\n",
    "unterminated_quote": invite().replace('"Alice"', '"Alice'),
    "angle_unclosed": invite().replace("To: <sip:1000@192.0.2.10>", "To: <sip:1000@192.0.2.10"),
    "orphan_fold": "OPTIONS sip:x SIP/2.0\r\n continuation\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK3\r\n\r\n",
    "no_header_end": invite().replace("\r\n\r\n", "\r\n"),
    "garbage": b"\x00\x01\x02SIP/2.0\xff\xfe",
}


def sip_seeds():
    clean("sip_parse")
    n = 0
    for xml in sorted((ROOT / "tests" / "sipp").rglob("*.xml")):
        for i, msg in enumerate(sipp_messages(xml)):
            write("sip_parse", f"sipp-{xml.stem}-{i}.sip", msg)
            n += 1
    for name, msg in SIP_CASES.items():
        write("sip_parse", f"{name}.sip", msg)
    return n


def stream_seeds():
    clean("sip_stream")
    msgs = [m if isinstance(m, bytes) else m.encode() for m in SIP_CASES.values()]
    sipp = [m for xml in sorted((ROOT / "tests" / "sipp").rglob("*.xml")) for m in sipp_messages(xml)]
    # First byte: the chunking seed of the harness.
    write("sip_stream", "two_messages", b"\x07" + sipp[0] + sipp[1])
    write("sip_stream", "keepalives", b"\x11" + b"\r\n\r\n" + sipp[0] + b"\r\n" + sipp[2] + b"\r\n\r\n")
    write("sip_stream", "invite_sdp", b"\x01" + msgs[0])
    write("sip_stream", "no_content_length", b"\x33" + SIP_CASES["no_content_length_body"].encode())
    write("sip_stream", "lf_only_pair", b"\x05" + SIP_CASES["lf_only"].encode() * 2)
    write("sip_stream", "huge_length", b"\x09" + SIP_CASES["content_length_huge"].encode())
    write("sip_stream", "partial_tail", b"\x02" + sipp[3] + sipp[4][: len(sipp[4]) // 2])
    for i, m in enumerate(sipp[:20]):
        write("sip_stream", f"sipp-{i}", bytes([i * 13 % 256]) + m + sipp[(i + 5) % len(sipp)])
    for name in ["compact_forms", "folded_headers", "record_route", "response_no_reason", "content_length_long"]:
        write("sip_stream", name, b"\x2a" + SIP_CASES[name].encode() + msgs[0])


SDP_CASES = {
    "sipp_offer": SDP_SIPP,
    "lf_only": SDP_SIPP.replace("\r\n", "\n"),
    "ipv6": SDP_SIPP.replace("IP4 192.0.2.20", "IP6 2001:db8::20"),
    "hold_sendonly": SDP_SIPP.replace("a=sendrecv", "a=sendonly"),
    "hold_zero_addr": SDP_SIPP.replace("c=IN IP4 192.0.2.20", "c=IN IP4 0.0.0.0"),
    "inactive_session": SDP_SIPP.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n").replace("a=sendrecv\r\n", ""),
    "rejected_port0": SDP_SIPP.replace("audio 6000", "audio 0"),
    "dynamic_pts": SDP_SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 96 97 98")
        .replace("rtpmap:0 PCMU", "rtpmap:96 PCMU").replace("rtpmap:8 PCMA", "rtpmap:97 PCMA")
        .replace("rtpmap:101", "rtpmap:98").replace("fmtp:101", "fmtp:98"),
    "pcma_only": SDP_SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 8"),
    "g729_only": SDP_SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 18").replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000"),
    "no_rtpmap": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n",
    "video_first": "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=call\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                   "m=video 7000 RTP/AVP 96\r\nc=IN IP4 192.0.2.9\r\na=rtpmap:96 H264/90000\r\na=inactive\r\n"
                   "m=audio 6000/2 RTP/SAVP 18 0\r\nc=IN IP4 192.0.2.2/127\r\na=rtpmap:18 G729/8000\r\n"
                   "a=ptime:30\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz\r\nm=audio 6002 RTP/AVP 8\r\n",
    "our_offer": "v=0\r\no=acd 9 9 IN IP4 10.0.0.5\r\ns=acd\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
                 "m=audio 4000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
                 "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
    "te_on_static_pt": SDP_SIPP.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 telephone-event/8000"),
    "duplicate_rtpmap": SDP_SIPP.replace("a=rtpmap:101 telephone-event/8000", "a=rtpmap:0 telephone-event/8000\r\na=rtpmap:101 telephone-event/8000"),
    "bad_port": SDP_SIPP.replace("audio 6000", "audio 70000"),
    "bad_pt": SDP_SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 0 x 200"),
    "not_rtp": SDP_SIPP.replace("RTP/AVP", "udp"),
    "no_connection": SDP_SIPP.replace("c=IN IP4 192.0.2.20\r\n", ""),
    "hostname_conn": SDP_SIPP.replace("c=IN IP4 192.0.2.20", "c=IN IP4 media.example.com"),
    "version_1": SDP_SIPP.replace("v=0", "v=1"),
    "no_version": SDP_SIPP.replace("v=0\r\n", ""),
    "garbage_line": SDP_SIPP.replace("s=-", "garbage"),
    "long_keys": SDP_SIPP.replace("s=-", "xyz=1\r\ns=-"),
    "ptime_bad": SDP_SIPP.replace("a=ptime:20", "a=ptime:-5"),
    "multicast_ttl": SDP_SIPP.replace("c=IN IP4 192.0.2.20", "c=IN IP4 224.2.1.1/127/3"),
    "blank_lines": SDP_SIPP.replace("\r\n", "\r\n\r\n"),
    "non_utf8": SDP_SIPP.encode().replace(b"s=-", b"s=\xff\xfe"),
    "utf8_names": SDP_SIPP.replace("s=-", "s=caf\u00e9 \u260e"),
    "rtpmap_no_space": SDP_SIPP.replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:8"),
}


def sdp_seeds():
    clean("sdp_parse")
    for name, body in SDP_CASES.items():
        write("sdp_parse", f"{name}.sdp", body)
    for xml in sorted((ROOT / "tests" / "sipp").rglob("*.xml")):
        for i, msg in enumerate(sipp_messages(xml)):
            head, _, body = msg.partition(b"\r\n\r\n")
            if body.startswith(b"v=0"):
                write("sdp_parse", f"sipp-{xml.stem}-{i}.sdp", body)


def rtp(pt, seq, ts, ssrc, payload, marker=False, csrcs=(), ext=None, pad=0, version=2):
    b0 = (version << 6) | (0x20 if pad else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    out = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext is not None:
        out += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    out += payload
    if pad:
        out += bytes(pad - 1) + bytes([pad])
    return out


def dtmf(event, end, volume, duration):
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def rtp_seeds():
    clean("rtp_parse")
    pcmu = bytes((i * 37) & 0xFF for i in range(160))
    cases = {
        "pcmu_20ms": rtp(0, 1000, 160_000, 0x11223344, pcmu, marker=True),
        "pcma_20ms": rtp(8, 65535, 0xFFFFFF00, 0x55667788, bytes([0xD5]) * 160),
        "pcmu_10ms": rtp(0, 7, 80, 1, pcmu[:80]),
        "dtmf_5_start": rtp(101, 2000, 8000, 0x1, dtmf(5, False, 10, 160), marker=True),
        "dtmf_hash_end": rtp(101, 2003, 8000, 0x1, dtmf(11, True, 10, 800)),
        "dtmf_flash": rtp(101, 2004, 8000, 0x1, dtmf(16, True, 0, 800)),
        "dtmf_reserved_bit": rtp(101, 2005, 8000, 0x1, bytes([3, 0x40 | 0x80 | 7, 1, 0])),
        "csrc_ext_pad": rtp(0, 1, 2, 3, b"\xaa\xbb", csrcs=[9], ext=b"\x01\x02\x03\x04", pad=2),
        "csrc_15": rtp(8, 1, 2, 3, pcmu[:20], csrcs=list(range(15))),
        "ext_truncated": rtp(0, 1, 2, 3, b"", ext=b"")[:-2] + b"\x00\x09",
        "pad_too_long": rtp(0, 1, 2, 3, b"\x01\x02")[:-1] + b"\xff",
        "pad_flag_no_payload": bytes([0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]),
        "rtcp_sr": bytes([0x80, 200, 0, 6]) + bytes(24),
        "rtcp_rr_muxed": bytes([0x81, 201, 0, 7]) + bytes(28),
        "version_0": rtp(0, 1, 2, 3, pcmu[:10], version=0),
        "short": bytes([0x80, 0, 0, 1, 0]),
        "header_only": rtp(0, 1, 2, 3, b""),
        "g729": rtp(18, 10, 20, 30, bytes(20)),
        "dynamic_96": rtp(96, 10, 20, 30, dtmf(1, False, 5, 160)),
        "empty": b"",
    }
    for name, pkt in cases.items():
        write("rtp_parse", f"{name}.rtp", pkt)
    # Relay sequences: [control, length, packet]… (see media::relay_sequence).
    def frame(ctl, pkt):
        return bytes([ctl, len(pkt)]) + pkt
    seqs = {
        "relay_a_to_b": b"".join(frame(0, rtp(0, 100 + i, 160 * i, 0xA, pcmu[:100])) for i in range(4)),
        "relay_both_ways": b"".join(frame(i & 1, rtp(8 if i & 1 else 0, 50 + i, 160 * i, 0xB + (i & 1), pcmu[:64]))
                                    for i in range(6)),
        "relay_player_between": frame(0, rtp(0, 1, 160, 7, pcmu[:40])) + frame(2, rtp(0, 2, 320, 7, pcmu[:40]))
                                 + frame(0, rtp(0, 3, 480, 7, pcmu[:40])),
        "relay_ssrc_change": frame(0, rtp(0, 1, 160, 7, pcmu[:40])) + frame(0, rtp(0, 9, 99999, 8, pcmu[:40])),
        "relay_dtmf": frame(0, rtp(101, 5, 800, 7, dtmf(1, False, 10, 160)))
                      + frame(0, rtp(101, 6, 800, 7, dtmf(1, True, 10, 320))),
        "relay_reorder_wrap": frame(1, rtp(8, 65535, 0xFFFFFF60, 3, pcmu[:160]))
                              + frame(1, rtp(8, 1, 0x00000040, 3, pcmu[:160]))
                              + frame(1, rtp(8, 0, 0xFFFFFFF0, 3, pcmu[:160])),
        "relay_rtcp_mixed": frame(0, bytes([0x80, 200, 0, 6]) + bytes(24)) + frame(0, rtp(0, 1, 2, 3, pcmu[:8])),
    }
    for name, data in seqs.items():
        write("rtp_parse", f"{name}.bin", data)


def digest_seeds():
    clean("digest")
    good = ('Digest username="agent1", realm="acd.example.com", nonce="$NONCE", uri="sip:acd.example.com", '
            'response="00112233445566778899aabbccddeeff", algorithm=MD5, cnonce="c0ffee", qop=auth, nc=00000001')
    cases = {
        "qop_auth": [good, "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "rfc2069": [good.replace(', cnonce="c0ffee", qop=auth, nc=00000001', ""), "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "other_realm": [good.replace("acd.example.com\", nonce", "elsewhere\", nonce"), "REGISTER", "sip:acd.example.com", "5", "agent1"],
        "forged_nonce": [good.replace("$NONCE", "f4240.00000000000000000000000000000000"), "REGISTER", "sip:x", "1000000", "u"],
        "sha256": [good.replace("MD5", "SHA-256"), "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "qop_int": [good.replace("qop=auth", "qop=auth-int"), "INVITE", "sip:acd.example.com", "1000000", "agent1"],
        "no_cnonce": [good.replace(', cnonce="c0ffee"', ""), "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "uri_mismatch": [good, "REGISTER", "sip:other.example.com", "1000000", "agent1"],
        "stale": [good, "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "escapes": ['Digest username="ag\\"ent\\\\1", realm="acd.example.com", nonce="$NONCE", uri="sip:a,b", response="x"',
                    "REGISTER", "sip:a,b", "77", 'ag"ent\\1'],
        "unterminated_quote": ['Digest username="agent1, realm="acd.example.com', "REGISTER", "", "0", ""],
        "no_space_after_scheme": ["Digestusername=x", "REGISTER", "sip:x", "1", "x"],
        "basic": ["Basic YWdlbnQxOnMzY3JldA==", "REGISTER", "sip:x", "1", "agent1"],
        "empty": ["", "", "", "", ""],
        "commas_equals": ['Digest ,,,="', "REGISTER", "sip:x", "1", "x"],
        "lowercase_scheme": [good.replace("Digest", "digest"), "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "challenge": ['Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                      'opaque="5ccc069c403ebaf9f0171e9517f40e41"', "GET", "/dir/index.html", "1", "Mufasa"],
        "challenge_stale": ['Digest realm="acd.example.com", nonce="$NONCE", algorithm=MD5, qop="auth", stale=true',
                            "REGISTER", "sip:acd.example.com", "300", "agent1"],
        "far_future_now": [good, "REGISTER", "sip:acd.example.com", "18446744073709551615", "agent1"],
        "zero_now": [good, "REGISTER", "sip:acd.example.com", "0", "agent1"],
        "utf8_user": [good.replace("agent1", "\u00e5gent\u2603"), "REGISTER", "sip:acd.example.com", "1000000", "\u00e5gent\u2603"],
        "tabs": [good.replace(", ", ",\t"), "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "duplicate_params": [good + ', realm="elsewhere", username="root"', "REGISTER", "sip:acd.example.com", "1000000", "agent1"],
        "key_only": ["Digest username, realm, nonce", "REGISTER", "sip:x", "1", "x"],
    }
    for name, fields in cases.items():
        write("digest", f"{name}.txt", "\n".join(fields))


def txn_seeds():
    """Scripts for sip::sip_transaction: steps joined by "\n~" (see its doc)."""
    clean("sip_transaction")
    def hdrs(method, branch, cseq, sent_by="192.0.2.20:5062", to_tag=""):
        return (f"Via: SIP/2.0/UDP {sent_by};branch={branch}\r\nFrom: <sip:a@x>;tag=1\r\n"
                f"To: <sip:1000@192.0.2.10>{to_tag}\r\nCall-ID: tx1@x\r\nCSeq: {cseq} {method}\r\n")
    def req(method, branch="z9hG4bKs1", cseq=1, to_tag="", cseq_method=None):
        return (f"{method} sip:1000@192.0.2.10 SIP/2.0\r\n" + hdrs(cseq_method or method, branch, cseq, to_tag=to_tag)
                + "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    def resp(status, method="INVITE", n=1, to_tag=";tag=b1"):
        return (f"SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfz{n}\r\n"
                f"From: <sip:acd@192.0.2.10>;tag=fzf{n}\r\nTo: <sip:agent1@192.0.2.20>{to_tag}\r\n"
                f"Call-ID: fz{n}@192.0.2.10\r\nCSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n")
    inv = invite(SDP_SIPP)
    scripts = {
        "uas_invite_486": ["A" + inv, "R180", "R486", "W500", "A" + req("ACK", "z9hG4bK776asdhds", 314159).replace("tx1@x", "a84b4c76e66710@192.0.2.20"), "W5000", "W40000"],
        "uas_invite_retrans_200": ["A" + inv, "A" + inv, "R100", "R200", "A" + inv, "W1000", "W40000"],
        "uas_options": ["A" + req("OPTIONS"), "R200", "A" + req("OPTIONS"), "W32000"],
        "uas_register_401": ["A" + req("REGISTER"), "R401", "A" + req("REGISTER", "z9hG4bKs2", 2), "R200", "W40000"],
        "uas_cancel": ["A" + req("INVITE"), "R180", "A" + req("CANCEL"), "R200", "R487", "A" + req("ACK", cseq_method="ACK"), "W40000"],
        "uas_tcp_invite": ["B" + inv, "R200", "W100"],
        "uas_bye_in_dialog": ["A" + req("BYE", "z9hG4bKb1", 2, ";tag=as1"), "R200", "W40000"],
        "uac_invite_answered": ["I", "A" + resp(100), "A" + resp(180), "A" + resp(200), "A" + resp(200), "W64000"],
        "uac_invite_timeout": ["I", "W500", "W1000", "W2000", "W4000", "W40000"],
        "uac_invite_rejected": ["I", "A" + resp(486), "A" + resp(486), "W40000"],
        "uac_options": ["O", "W500", "B" + resp(200, "OPTIONS", 1), "W5000"],
        "uac_options_timeout": ["O", "W500", "W1000", "W2000", "W4000", "W4000", "W40000"],
        "stray_response": ["A" + resp(200, "INVITE", 9)],
        "ack_for_2xx": ["A" + req("ACK", "z9hG4bKnew", 1, ";tag=as1")],
        "no_branch": ["A" + req("INVITE").replace(";branch=z9hG4bKs1", ""), "R200"],
        "two_calls": ["A" + req("INVITE", "z9hG4bKc1"), "A" + req("INVITE", "z9hG4bKc2", 2), "R603", "I", "O", "W100", "R200", "W64000"],
        "merged_request": ["A" + req("INVITE", "z9hG4bKm1"), "B" + req("INVITE", "z9hG4bKm2"), "R200"],
    }
    for name, steps in scripts.items():
        write("sip_transaction", f"{name}.txt", "\n~".join(steps))


if __name__ == "__main__":
    txn_seeds()
    sip_seeds()
    stream_seeds()
    sdp_seeds()
    rtp_seeds()
    digest_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} files")
