"""A minimal MQTT 3.1.1 client on raw sockets (stdlib only), enough for the harness:
CONNECT, SUBSCRIBE, PUBLISH (QoS 0/1), PUBACK. Every received PUBLISH is stamped with
time.time_ns() taken right after the recv() that brought its last byte (CLOCK_REALTIME, the
clock Docker's timeNano uses)."""

import select
import socket
import struct
import time


def _enc_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _enc_len(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        if n:
            d |= 0x80
        out.append(d)
        if not n:
            return bytes(out)


class MQTT:
    def __init__(self, host, port, client_id, keepalive=0, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.buf = b""
        self.next_mid = 1
        var = _enc_str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive)
        payload = _enc_str(client_id)
        self._send(0x10, var + payload)
        ptype, _, body = self._read_packet_blocking()
        if ptype != 0x20 or body[1] != 0:
            raise RuntimeError(f"CONNACK refused: {body!r}")

    def _send(self, first, body):
        self.sock.sendall(bytes([first]) + _enc_len(len(body)) + body)

    def _read_packet_blocking(self):
        while True:
            p = self._parse_one()
            if p is not None:
                return p
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self.buf += chunk

    def _parse_one(self):
        b = self.buf
        if len(b) < 2:
            return None
        mult, n, i = 1, 0, 1
        while True:
            if i >= len(b):
                return None
            d = b[i]
            n += (d & 0x7F) * mult
            mult *= 128
            i += 1
            if not d & 0x80:
                break
        if len(b) < i + n:
            return None
        first = b[0]
        body = b[i : i + n]
        self.buf = b[i + n :]
        return first & 0xF0, first & 0x0F, body

    def subscribe(self, filters, qos=1):
        mid = self._mid()
        body = struct.pack("!H", mid) + b"".join(_enc_str(f) + bytes([qos]) for f in filters)
        self._send(0x82, body)
        # Wait for SUBACK (messages arriving before it are kept in the buffer for later).
        pending = []
        while True:
            ptype, flags, pbody = self._read_packet_blocking()
            if ptype == 0x90:
                break
            pending.append((ptype, flags, pbody))
        self._early = pending

    def _mid(self):
        m = self.next_mid
        self.next_mid = m % 65535 + 1
        return m

    def publish(self, topic, payload, qos=0, retain=False):
        if isinstance(payload, str):
            payload = payload.encode()
        body = _enc_str(topic)
        if qos:
            body += struct.pack("!H", self._mid())
        self._send(0x30 | (qos << 1) | (1 if retain else 0), body + payload)

    def _decode_publish(self, flags, body):
        qos = (flags >> 1) & 3
        tl = struct.unpack("!H", body[:2])[0]
        topic = body[2 : 2 + tl].decode()
        i = 2 + tl
        mid = None
        if qos:
            mid = struct.unpack("!H", body[i : i + 2])[0]
            i += 2
        return topic, body[i:], bool(flags & 1), qos, mid

    def receive(self, timeout=None):
        """Returns a list of (t_ns, topic, payload, retain) for what arrived with the next
        recv (possibly empty on timeout). QoS 1 messages are acknowledged at once."""
        out = []
        early = getattr(self, "_early", None)
        if early:
            t = time.time_ns()
            for ptype, flags, body in early:
                if ptype == 0x30:
                    topic, payload, retain, qos, mid = self._decode_publish(flags, body)
                    if qos == 1:
                        self._send(0x40, struct.pack("!H", mid))
                    out.append((t, topic, payload, retain))
            self._early = None
            if out:
                return out
        if timeout is not None:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return out
        chunk = self.sock.recv(262144)
        t = time.time_ns()
        if not chunk:
            raise ConnectionError("broker closed the connection")
        self.buf += chunk
        acks = bytearray()
        while True:
            p = self._parse_one()
            if p is None:
                break
            ptype, flags, body = p
            if ptype == 0x30:
                topic, payload, retain, qos, mid = self._decode_publish(flags, body)
                if qos == 1:
                    acks += b"\x40\x02" + struct.pack("!H", mid)
                out.append((t, topic, payload, retain))
        if acks:
            self.sock.sendall(bytes(acks))
        return out

    def close(self):
        try:
            self._send(0xE0, b"")
        except OSError:
            pass
        self.sock.close()


def record(host, port, filters, out_path, client_id):
    """The subscriber role: records every message as one JSON line until killed."""
    import json

    c = MQTT(host, port, client_id)
    c.subscribe(filters, qos=1)
    out = open(out_path, "w", buffering=1 << 16)
    out.write(json.dumps({"ready": time.time_ns()}) + "\n")
    out.flush()
    while True:
        r, _, _ = select.select([c.sock], [], [], 0)
        if not r:
            out.flush()
        for t, topic, payload, retain in c.receive():
            out.write(
                json.dumps({"t": t, "topic": topic, "r": 1 if retain else 0, "p": payload.decode("utf-8", "replace")})
                + "\n"
            )
