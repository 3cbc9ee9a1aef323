#!/usr/bin/env python3
"""A Docker Engine API double that gets stuck: for fault tests only.

Serves just enough of the Engine API on a unix socket for the bridge to list one running
container ("stuck") and follow /events; every POST (pause, stop, ...) is accepted and never
answered, like an engine whose containerd hangs. Usage: stuck_dockerd.py SOCKET_PATH
"""
import json
import os
import socketserver
import sys
import threading
import time

NAME = "stuck"
CID = "5" * 64


class Handler(socketserver.StreamRequestHandler):
    def send(self, status, body, ctype="application/json"):
        data = body.encode()
        self.wfile.write(
            f"HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        self.wfile.flush()

    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            length = 0
            while True:
                h = self.rfile.readline().decode()
                if h in ("\r\n", "\n", ""):
                    break
                if h.lower().startswith("content-length:"):
                    length = int(h.split(":", 1)[1])
            if length:
                self.rfile.read(length)
            path = path.split("?", 1)[0]
            if path == "/_ping":
                self.send("200 OK", "OK", "text/plain")
            elif path.endswith("/containers/json"):
                self.send("200 OK", json.dumps([{"Id": CID, "Names": ["/" + NAME], "State": "running",
                                                 "Image": "stuck:latest", "Labels": {}}]))
            elif path.endswith(f"/containers/{NAME}/json") or path.endswith(f"/containers/{CID}/json"):
                self.send("200 OK", json.dumps({"Id": CID, "Name": "/" + NAME, "State": {"Status": "running"},
                                                "Config": {"Labels": {}}}))
            elif path.endswith("/events"):
                self.wfile.write(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                self.wfile.flush()
                while True:
                    time.sleep(3600)
            elif method == "POST":
                while True:  # stuck
                    time.sleep(3600)
            else:
                self.send("404 Not Found", json.dumps({"message": "page not found"}))


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    server = Server(path, Handler)
    print("listening", flush=True)
    server.serve_forever()
