"""A tiny Docker Engine API client over the unix socket (stdlib only).

Used by the harness to make the changes it measures (pause, unpause, create, ...) and, as
`EventFloor`, as the "plain client of the Docker events API" the bridge is compared with.
"""

import http.client
import json
import socket
import time
import urllib.parse

DOCKER_SOCKET = "/var/run/docker.sock"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class DockerError(Exception):
    pass


class Docker:
    """One keep-alive connection; not thread-safe (one per thread)."""

    def __init__(self, path=DOCKER_SOCKET, timeout=120):
        self.path = path
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, ok=(200, 201, 204, 304)):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = UnixHTTPConnection(self.path, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        if r.status not in ok:
            raise DockerError(f"{method} {path}: HTTP {r.status}: {raw[:300]!r}")
        if raw and r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(raw)
        return r.status, raw

    # conveniences
    def create(self, name, labels, image, cmd, init=False, healthcheck=None):
        """`init`: Docker's init as PID 1 (`--init`), so that SIGTERM ends a plain `sleep` at once.
        `healthcheck`: (shell command, interval in seconds) as `--health-cmd`/`--health-interval`."""
        body = {"Image": image, "Cmd": cmd, "Labels": labels, "HostConfig": {"NetworkMode": "none"}}
        if init:
            body["HostConfig"]["Init"] = True
        if healthcheck:
            test, interval = healthcheck
            body["Healthcheck"] = {"Test": ["CMD-SHELL", test], "Interval": int(interval * 1e9)}
        return self.request("POST", "/containers/create?name=" + urllib.parse.quote(name), body)[1]

    def start(self, name):
        self.request("POST", f"/containers/{name}/start")

    def pause(self, name):
        self.request("POST", f"/containers/{name}/pause")

    def unpause(self, name):
        self.request("POST", f"/containers/{name}/unpause")

    def stop(self, name, t=0):
        self.request("POST", f"/containers/{name}/stop?t={t}")

    def kill(self, name):
        self.request("POST", f"/containers/{name}/kill", ok=(204, 404, 409))

    def remove(self, name):
        self.request("DELETE", f"/containers/{name}?force=1&v=1", ok=(204, 404))

    def inspect(self, name):
        return self.request("GET", f"/containers/{name}/json")[1]

    def list_by_label(self, label):
        f = urllib.parse.quote(json.dumps({"label": [label]}))
        return self.request("GET", f"/containers/json?all=1&filters={f}")[1]

    def version(self):
        return self.request("GET", "/version")[1]


def follow_events(out_path, stop_flag_path=None, path=DOCKER_SOCKET):
    """The floor: reads GET /events (container events) raw, timestamps each chunk on receipt
    (CLOCK_REALTIME, like Docker's timeNano) and writes one JSON line per event:
    {"t": receive_ns, "e": <the event>}. Runs until killed (SIGTERM)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = urllib.parse.quote(json.dumps({"type": ["container"]}))
    s.sendall(f"GET /events?filters={f} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    out = open(out_path, "w", buffering=1 << 16)
    buf = b""
    # headers
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("docker closed the events stream")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit("events: " + head.decode(errors="replace"))
    chunked = b"chunked" in head.lower()
    out.write(json.dumps({"ready": time.time_ns()}) + "\n")
    out.flush()
    import select

    body = b""
    while True:
        # Timestamp each receive; flush the file only while nothing is waiting.
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            out.flush()
        chunk = s.recv(65536)
        t = time.time_ns()
        if not chunk:
            break
        buf += chunk
        if chunked:
            while True:
                nl = buf.find(b"\r\n")
                if nl < 0:
                    break
                size = int(buf[:nl].split(b";")[0], 16)
                if len(buf) < nl + 2 + size + 2:
                    break
                body += buf[nl + 2 : nl + 2 + size]
                buf = buf[nl + 2 + size + 2 :]
        else:
            body += buf
            buf = b""
        while b"\n" in body:
            line, body = body.split(b"\n", 1)
            if line.strip():
                out.write('{"t":%d,"e":%s}\n' % (t, line.decode()))
    out.flush()


def counting_proxy(listen_path, out_path, upstream=DOCKER_SOCKET):
    """A unix-socket proxy in front of the Engine API that writes one JSON line per HTTP request
    a client sends through it: {"t": receive_ns, "m": method, "p": path}. Bytes are passed on
    unchanged both ways (keep-alive and the long /events response included); only the client's
    side is parsed, by request line, headers and Content-Length. Runs until killed (SIGTERM)."""
    import os
    import threading

    try:
        os.unlink(listen_path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen_path)
    srv.listen(64)
    out = open(out_path, "w", buffering=1)
    lock = threading.Lock()
    out.write(json.dumps({"ready": time.time_ns()}) + "\n")

    def note(rec):
        with lock:
            out.write(json.dumps(rec) + "\n")

    def down(up, client):
        try:
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (client, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(client):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(upstream)
        threading.Thread(target=down, args=(up, client), daemon=True).start()
        buf = b""
        body_left = 0
        try:
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                t = time.time_ns()
                up.sendall(chunk)
                buf += chunk
                while True:
                    if body_left:
                        n = min(body_left, len(buf))
                        buf, body_left = buf[n:], body_left - n
                        if body_left:
                            break
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head, buf = buf[:end].decode("latin-1"), buf[end + 4 :]
                    lines = head.split("\r\n")
                    parts = lines[0].split(" ")
                    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
                    note({"t": t, "m": parts[0], "p": parts[1] if len(parts) > 1 else ""})
                    if headers.get("transfer-encoding", "").lower() == "chunked":
                        note({"t": t, "warning": "chunked request body: later requests on this connection not counted"})
                        body_left, buf = 1 << 62, b""
                    else:
                        body_left = int(headers.get("content-length", "0") or 0)
        except OSError:
            pass
        finally:
            for s in (client, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
