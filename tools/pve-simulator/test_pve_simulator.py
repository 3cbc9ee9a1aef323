#!/usr/bin/env python3
"""Self-check for pve_simulator.py: starts it as a subprocess and talks to it with urllib.

Run: python3 tools/pve-simulator/test_pve_simulator.py
Ends with "N passed, M failed"; exits non-zero if anything failed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIMULATOR = os.path.join(HERE, "pve_simulator.py")
TOKEN = "root@pam!bridge=5e0f3c2a-8b1d-4f6e-9a73-2c4b6d8e0f15"
UPID_RE = re.compile(r"^UPID:[a-z0-9-]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:\w+:\d*:[^:]+:$")
TASK_SECONDS = 0.25
AUTH_DELAY = 0.2

passed = failed = 0
counts_lock = threading.Lock()


def check(name: str, condition: bool, detail="") -> None:
    global passed, failed
    with counts_lock:
        if condition:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name} {detail}", flush=True)


class Response:
    def __init__(self, status, reason, headers, body: bytes):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def data(self):
        return (self.json or {}).get("data")

    def __repr__(self):
        return f"<{self.status} {self.reason!r} {self.body[:300]!r}>"


class Simulator:
    """One simulator process; `req` talks to it."""

    def __init__(self, *args: str, https=True):
        self.tmp = tempfile.mkdtemp(prefix="pve-sim-test-")
        self.ca = os.path.join(self.tmp, "ca.pem")
        cmd = [sys.executable, SIMULATOR, "--port", "0", "--quiet",
               "--port-file", os.path.join(self.tmp, "port")]
        if https:
            cmd += ["--ca-out", self.ca]
        else:
            cmd += ["--http"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.line = self.proc.stdout.readline().strip()
        self.startup = time.monotonic() - self.started
        m = re.fullmatch(r"pve-simulator listening on (https?)://127\.0\.0\.1:(\d+)", self.line)
        if not m:
            raise RuntimeError(f"simulator did not start: {self.line!r}")
        self.base = f"{m.group(1)}://127.0.0.1:{m.group(2)}"
        self.port = int(m.group(2))
        ctx = ssl.create_default_context(cafile=self.ca) if https else None
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx)) \
            if https else urllib.request.build_opener()

    def req(self, method, path, params=None, json_body=None, auth="token", headers=None,
            timeout=10) -> Response:
        url = self.base + path
        hdrs = dict(headers or {})
        data = None
        if auth == "token":
            hdrs["Authorization"] = "PVEAPIToken=" + TOKEN
        elif auth:
            hdrs["Authorization"] = "PVEAPIToken=" + auth
        if json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        elif params is not None and method == "GET":
            url += "?" + urllib.parse.urlencode(params)
        elif params is not None:
            data = urllib.parse.urlencode(params).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif method != "GET":
            data = b""
        request = urllib.request.Request(url, data=data, headers=hdrs, method=method)
        try:
            with self.opener.open(request, timeout=timeout) as r:
                return Response(r.status, r.reason, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.reason, e.headers, e.read())

    def api(self, method, path, **kw) -> Response:
        return self.req(method, "/api2/json" + path, **kw)

    def sim(self, method, path, body=None) -> Response:
        return self.req(method, "/_sim" + path, json_body=body if body is not None else {},
                        auth=None)

    def wait_task(self, node, upid, deadline=10.0) -> dict:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            r = self.api("GET", f"/nodes/{node}/tasks/{upid}/status")
            if r.status == 200 and r.data["status"] == "stopped":
                return r.data
            time.sleep(0.05)
        raise AssertionError(f"task {upid} did not finish")

    def wait_status(self, node, vmid, want, deadline=10.0) -> bool:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.api("GET", f"/nodes/{node}/lxc/{vmid}/status/current").data["status"] == want:
                return True
            time.sleep(0.05)
        return False

    def status(self, node, vmid) -> str:
        return self.api("GET", f"/nodes/{node}/lxc/{vmid}/status/current").data["status"]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        finally:
            self.proc.stdout.close()


# --------------------------------------------------------------------------- tests

def test_transport_and_auth(s: Simulator):
    check("listening line", s.line.startswith("pve-simulator listening on https://"), s.line)
    with open(os.path.join(s.tmp, "port")) as f:
        check("port file", int(f.read()) == s.port)
    r = s.api("GET", "/version")
    check("version over verified TLS", r.status == 200 and r.data["version"] == "9.0.3", r)
    check("version: exactly version, release, repoid", r.data == {
        "version": "9.0.3", "release": "9.0", "repoid": "025864202ebb6109"}, r)
    check("json content type", r.headers["Content-Type"] == "application/json;charset=UTF-8")

    t0 = time.monotonic()
    r = s.api("GET", "/version", auth=None)
    check("no credentials: 401 No ticket, empty body",
          (r.status, r.reason, r.body) == (401, "No ticket", b""), r)
    check("401 is delayed", time.monotonic() - t0 >= AUTH_DELAY * 0.9)
    r = s.api("GET", "/version", auth="root@pam!bridge=wrong")
    check("bad token: Authentication failed!",
          (r.status, r.reason, r.body) == (401, "Authentication failed!", b""), r)

    t0 = time.monotonic()
    r = s.api("POST", "/access/ticket", params={"username": "root@pam", "password": "nope"},
              auth=None)
    check("wrong password", r.status == 401 and r.json == {
        "data": None, "message": "authentication failure\n"}, r)
    check("wrong password is delayed too", time.monotonic() - t0 >= AUTH_DELAY * 0.9)
    r = s.api("POST", "/access/ticket", params={"username": "root", "realm": "pam",
                                                 "password": "secret"}, auth=None)
    check("login with realm", r.status == 200 and r.data["username"] == "root@pam", r)
    ticket, csrf = r.data["ticket"], r.data["CSRFPreventionToken"]
    check("ticket format", re.fullmatch(r"PVE:root@pam:[0-9A-F]{8}::[A-Za-z0-9+/=]+", ticket),
          ticket)
    check("csrf format", re.fullmatch(r"[0-9A-F]{8}:[A-Za-z0-9+/]{43}", csrf), csrf)
    cookie = {"Cookie": "PVEAuthCookie=" + urllib.parse.quote(ticket, safe="")}
    r = s.api("GET", "/nodes", auth=None, headers=cookie)
    check("cookie auth GET", r.status == 200 and r.data[0]["node"] == "pve1", r)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/reboot", auth=None, headers=cookie)
    check("non-GET without CSRF", (r.status, r.reason, r.body) ==
          (401, "Permission denied - invalid csrf token", b""), r)
    r = s.api("POST", "/access/ticket", params={"username": "root@pam", "password": ticket},
              auth=None)
    check("ticket renewal", r.status == 200 and r.data["ticket"] != ticket, r)
    s.sim("POST", "/tickets/expire")
    r = s.api("GET", "/nodes", auth=None, headers=cookie)
    check("expired ticket", (r.status, r.reason) == (401, "Authentication failed!"), r)

    r = s.sim("POST", "/token", {"token": "root@pam!ro=abc", "privileges": ["VM.Audit"]})
    check("add restricted token", r.status == 200, r)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/stop", auth="root@pam!ro=abc")
    check("restricted token: 403", r.status == 403 and r.json == {
        "data": None, "message": "Permission check failed (/vms/100, VM.PowerMgmt)\n"}, r)
    r = s.api("GET", "/nodes/pve1/lxc/100/status/current", auth="root@pam!ro=abc")
    check("restricted token may audit", r.status == 200, r)


def test_reads(s: Simulator):
    r = s.api("GET", "/nodes/pve1/lxc/100/status/current")
    d = r.data
    want = {"vmid", "type", "name", "status", "cpus", "cpu", "mem", "maxmem", "swap", "maxswap",
            "disk", "maxdisk", "uptime", "netin", "netout", "diskread", "diskwrite", "ha", "pid",
            "pressurecpusome", "pressurecpufull", "pressureiosome", "pressureiofull",
            "pressurememorysome", "pressurememoryfull"}
    check("status/current fields", want <= set(d), sorted(want - set(d)))
    check("status/current values", d["vmid"] == 100 and d["type"] == "lxc" and
          d["status"] == "running" and d["ha"] == {"managed": 0} and
          d["pressurecpusome"] == "0.00", d)
    r = s.api("GET", "/nodes/pve1/lxc/999/status/current")
    check("missing CT: 500", (r.status, r.reason) ==
          (500, "Configuration file 'nodes/pve1/lxc/999.conf' does not exist") and
          r.json["message"].endswith("does not exist\n"), r)
    r = s.api("GET", "/nodes/pve1/lxc/101/status/current")
    check("wrong node looks missing", r.status == 500 and "nodes/pve1/lxc/101.conf" in r.reason)
    r = s.api("GET", "/nodes/pve1/lxc")
    check("lxc list", r.status == 200 and {c["vmid"] for c in r.data} == {100, 102, 104} and
          all("ha" not in c for c in r.data), r)
    r = s.api("GET", "/nodes/pve1/lxc/100/config")
    check("config", r.status == 200 and r.data["hostname"] == "ct100", r)
    r = s.api("GET", "/cluster/resources", params={"type": "vm"})
    check("resources", r.status == 200 and len(r.data) == 6, r)
    e = r.data[0]
    check("resource entry", e["id"] == "lxc/100" and e["type"] == "lxc" and e["template"] == 0
          and {"maxcpu", "maxmem", "maxdisk", "uptime", "netin", "diskwrite"} <= set(e), e)
    r = s.api("GET", "/cluster/resources", params={"type": "bogus"})
    check("resources enum", r.status == 400 and "type" in r.json["errors"], r)
    r = s.api("GET", "/nodes/pve1/lxc/100/status/foo")
    check("501", (r.status, r.reason) ==
          (501, "Method 'GET /nodes/pve1/lxc/100/status/foo' not implemented"), r)
    r = s.api("GET", "/nodes/pve1/lxc/abc/status/current")
    check("vmid type check", r.status == 400 and r.json["errors"]["vmid"] ==
          "type check ('integer') failed - got 'abc'", r)


def test_params(s: Simulator):
    r = s.api("POST", "/nodes/pve1/lxc/100/status/shutdown",
              params={"timeout": "x", "forceStop": "true", "bogus": "1"})
    check("400 param errors", r.status == 400 and r.reason == "Parameter verification failed."
          and r.json == {"data": None, "message": "Parameter verification failed.\n", "errors": {
              "timeout": "type check ('integer') failed - got 'x'",
              "forceStop": "type check ('boolean') failed - got 'true'",
              "bogus": "property is not defined in schema and the schema does not allow "
                       "additional properties"}}, r)
    r = s.api("POST", "/nodes/pve1/lxc/102/status/shutdown",
              json_body={"timeout": 5, "forceStop": True})
    check("JSON body booleans accepted", r.status == 200 and UPID_RE.match(r.data or ""), r)
    s.wait_task("pve1", r.data)


def test_lifecycle(s: Simulator):
    r = s.api("POST", "/nodes/pve1/lxc/100/status/start")
    check("start running: 500", (r.status, r.reason) == (500, "CT 100 already running") and
          r.json == {"data": None, "message": "CT 100 already running\n"}, r)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/shutdown", params={"timeout": 5,
                                                                     "forceStop": 1})
    upid = r.data
    check("shutdown returns UPID", r.status == 200 and UPID_RE.match(upid) and
          ":vzshutdown:100:root@pam!bridge:" in upid, r)
    check("status unchanged while task runs", s.status("pve1", 100) == "running")
    t = s.wait_task("pve1", urllib.parse.quote(upid, safe=""))
    check("task status via %3A", t["exitstatus"] == "OK" and t["user"] == "root@pam" and
          t["tokenid"] == "bridge" and t["type"] == "vzshutdown" and t["id"] == "100", t)
    check("stopped after task", s.status("pve1", 100) == "stopped")
    for action, msg in (("stop", "CT 100 not running"), ("shutdown", "CT 100 not running"),
                        ("suspend", "CT 100 not running"), ("reboot", "VM 100 not running")):
        r = s.api("POST", f"/nodes/pve1/lxc/100/status/{action}")
        check(f"{action} precheck", (r.status, r.reason) == (500, msg), r)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/start")
    t = s.wait_task("pve1", r.data)
    check("start", t["exitstatus"] == "OK" and s.status("pve1", 100) == "running", t)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/reboot")
    t = s.wait_task("pve1", r.data)
    check("reboot", t["exitstatus"] == "OK" and s.status("pve1", 100) == "running", t)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/stop", params={"overrule-shutdown": 0})
    t = s.wait_task("pve1", r.data)
    check("stop", t["type"] == "vzstop" and t["exitstatus"] == "OK" and
          s.status("pve1", 100) == "stopped", t)

    r = s.api("POST", "/nodes/pve1/lxc/999/status/start")
    t = s.wait_task("pve1", r.data) if r.status == 200 else {}
    check("start missing CT: failing task",
          t.get("exitstatus") == "Configuration file 'nodes/pve1/lxc/999.conf' does not exist", r)

    for flags, text in (({"lock": "backup"}, "CT is locked (backup)"),
                        ({"lock": None, "template": True},
                         "you can't start a CT if it's a template"),
                        ({"template": False, "fail_start": True},
                         "startup for container '100' failed")):
        s.sim("POST", "/ct/100", flags)
        r = s.api("POST", "/nodes/pve1/lxc/100/status/start")
        t = s.wait_task("pve1", r.data)
        check(f"start fails: {text}", t["exitstatus"] == text and
              s.status("pve1", 100) == "stopped", t)
    s.sim("POST", "/ct/100", {"fail_start": False})


def test_shutdown_timeout(s: Simulator):
    s.sim("POST", "/ct/104", {"ignore_shutdown": True})
    t0 = time.monotonic()
    r = s.api("POST", "/nodes/pve1/lxc/104/status/shutdown", params={"timeout": 1})
    t = s.wait_task("pve1", r.data)
    took = time.monotonic() - t0
    check("ignoring CT, forceStop=0: fails after timeout",
          t["exitstatus"] == "container did not stop" and 0.9 <= took < 2.5 and
          s.status("pve1", 104) == "running", (t, took))
    t0 = time.monotonic()
    r = s.api("POST", "/nodes/pve1/lxc/104/status/shutdown", params={"timeout": 1,
                                                                     "forceStop": 1})
    t = s.wait_task("pve1", r.data)
    took = time.monotonic() - t0
    check("ignoring CT, forceStop=1: killed after timeout", t["exitstatus"] == "OK" and
          0.9 <= took < 2.5 and s.status("pve1", 104) == "stopped", (t, took))

    s.sim("POST", "/ct/104", {"status": "running"})
    r = s.api("POST", "/nodes/pve1/lxc/104/status/shutdown", params={"timeout": 30})
    shutdown_upid = r.data
    time.sleep(0.2)
    r = s.api("POST", "/nodes/pve1/lxc/104/status/stop", params={"overrule-shutdown": 1})
    t = s.wait_task("pve1", r.data, deadline=5)
    shut = s.wait_task("pve1", shutdown_upid, deadline=1)
    check("overrule-shutdown aborts the shutdown", t["exitstatus"] == "OK" and
          shut["exitstatus"] == "received interrupt" and s.status("pve1", 104) == "stopped",
          (t, shut))
    s.sim("POST", "/ct/104", {"ignore_shutdown": False, "status": "running"})


def test_suspend_resume(s: Simulator):
    r = s.api("POST", "/nodes/pve1/lxc/102/status/start")
    s.wait_task("pve1", r.data)
    r = s.api("POST", "/nodes/pve1/lxc/102/status/suspend")
    t = s.wait_task("pve1", r.data)
    check("suspend", t["exitstatus"] == "OK" and s.status("pve1", 102) == "stopped", t)
    r = s.api("GET", "/nodes/pve1/tasks", params={"vmid": 102, "limit": 1})
    check("latest task is vzsuspend", r.status == 200 and r.data[0]["type"] == "vzsuspend" and
          r.data[0]["status"] == "OK" and "endtime" in r.data[0], r)
    r = s.api("POST", "/nodes/pve1/lxc/102/status/resume")
    t = s.wait_task("pve1", r.data)
    check("resume", t["exitstatus"] == "OK" and s.status("pve1", 102) == "running", t)
    r = s.api("POST", "/nodes/pve1/lxc/102/status/resume")
    check("resume precheck", (r.status, r.reason) == (500, "CT 102 already running"), r)
    s.sim("POST", "/ct/102", {"fail_suspend": True})
    r = s.api("POST", "/nodes/pve1/lxc/102/status/suspend")
    t = s.wait_task("pve1", r.data)
    check("failing suspend", t["exitstatus"] == "command 'lxc-checkpoint -n 102 -s -D "
          "/var/lib/vz/dump' failed: exit code 1" and s.status("pve1", 102) == "running", t)
    s.sim("POST", "/ct/102", {"suspended": True})
    check("control: suspended", s.status("pve1", 102) == "stopped" and s.api(
        "GET", "/nodes/pve1/tasks", params={"vmid": 102, "limit": 1}).data[0]["type"] ==
        "vzsuspend")


def test_ha(s: Simulator):
    s.sim("POST", "/ct/103", {"ha": True, "status": "stopped"})
    r = s.api("GET", "/nodes/pve2/lxc/103/status/current")
    check("ha field", r.data["ha"] == {"managed": 1, "state": "stopped"}, r)
    r = s.api("POST", "/nodes/pve2/lxc/103/status/start")
    check("hastart UPID", ":hastart:103:" in (r.data or ""), r)
    t0 = time.monotonic()
    t = s.wait_task("pve2", r.data)
    check("hastart ends at once, CT not yet running",
          time.monotonic() - t0 < TASK_SECONDS and t["exitstatus"] == "OK" and
          s.status("pve2", 103) == "stopped", t)
    check("HA starts it later", s.wait_status("pve2", 103, "running", deadline=3))
    r = s.api("GET", "/cluster/resources", params={"type": "vm"})
    e = [x for x in r.data if x["vmid"] == 103][0]
    check("hastate in resources", e.get("hastate") == "started", e)


def test_tasks_and_errors(s: Simulator):
    r = s.api("GET", "/nodes/pve1/tasks/UPID:garbage/status")
    check("bad upid", r.status == 400 and r.json["errors"] == {
        "upid": "unable to parse worker upid"}, r)
    r = s.api("GET", "/nodes/pve1/tasks/UPID:pve1:00001234:00ABCDEF:5F3C0469:vzstart:100:"
                     "root@pam:/status")
    check("unknown upid", r.status == 400 and r.json["errors"] == {"upid": "no such task"}, r)
    r = s.api("GET", "/cluster/tasks")
    check("cluster tasks", r.status == 200 and r.data and all(
        ("endtime" in t and "status" in t) for t in r.data if t["saved"] == "1"), r)
    r = s.api("GET", "/nodes/pve1/tasks", params={"typefilter": "vzstart", "limit": 2})
    check("tasks typefilter/limit", r.status == 200 and len(r.data) == 2 and
          all(t["type"] == "vzstart" for t in r.data), r)
    r = s.api("GET", "/nodes/pve1/tasks", params={"source": "nope"})
    check("tasks source enum", r.status == 400, r)

    s.sim("POST", "/ct", {"vmid": 200, "node": "pve2", "name": "new", "status": "stopped"})
    r = s.api("GET", "/nodes/pve2/tasks", params={"vmid": 200})
    check("control create records vzcreate", [t["type"] for t in r.data] == ["vzcreate"], r)
    s.sim("DELETE", "/ct/200")
    r = s.api("GET", "/nodes/pve2/lxc/200/status/current")
    check("control destroy", r.status == 500 and s.api(
        "GET", "/nodes/pve2/tasks", params={"vmid": 200, "limit": 1}).data[0]["type"] ==
        "vzdestroy", r)

    before = len(s.api("GET", "/nodes/pve2/tasks", params={"vmid": 105}).data)
    s.sim("POST", "/ct/105", {"status": "stopped"})
    after = s.api("GET", "/nodes/pve2/tasks", params={"vmid": 105}).data
    check("outside change creates no task", s.status("pve2", 105) == "stopped" and
          len(after) == before, after)
    r = s.sim("POST", "/ct/105/action/start")
    t = s.wait_task("pve2", r.json["upid"])
    check("GUI action by root@pam", t["user"] == "root@pam" and "tokenid" not in t and
          s.status("pve2", 105) == "running", t)

    s.sim("POST", "/node/pve2", {"online": False})
    r = s.api("GET", "/nodes/pve2/lxc/101/status/current")
    check("node down: 595", (r.status, r.reason) == (595, "Connection refused"), r)
    r = s.api("GET", "/cluster/resources", params={"type": "vm"})
    check("node down: status unknown", {e["status"] for e in r.data if e["node"] == "pve2"} ==
          {"unknown"}, r)
    check("node down: no data at all (no name, no counters)", all(
        set(e) - {"hastate"} == {"id", "type", "vmid", "node", "status"} for e in r.data
        if e["node"] == "pve2"), r)
    r = s.api("GET", "/nodes")
    check("node down in /nodes", [n["status"] for n in r.data] == ["online", "offline"], r)
    s.sim("POST", "/node/pve2", {"online": True})

    s.sim("POST", "/fail", {"status": 503, "count": 2})
    codes = [s.api("GET", "/version") for _ in range(3)]
    check("fail injection", [(c.status, c.reason) for c in codes] ==
          [(503, "Service Unavailable")] * 2 + [(200, "OK")], codes)
    s.sim("POST", "/slow", {"seconds": 0.4})
    t0 = time.monotonic()
    s.api("GET", "/version")
    slow = time.monotonic() - t0
    s.sim("POST", "/slow", {"seconds": 0})
    check("slow injection", slow >= 0.4, slow)

    s.sim("POST", "/stats/reset")
    s.api("GET", "/cluster/resources")
    s.api("GET", "/nodes/pve1/lxc/100/status/current")
    s.api("GET", "/nodes/pve1/lxc/102/status/current")
    r = s.sim("GET", "/stats")
    check("stats by template", r.json == {"requests": {
        "GET /cluster/resources": 1, "GET /nodes/{node}/lxc/{vmid}/status/current": 2},
        "total": 3}, r)
    r = s.sim("GET", "/ct/100")
    check("control ct state", r.status == 200 and r.json["vmid"] == 100 and
          "suspended" in r.json, r)


def vm_current(s: Simulator, node, vmid) -> dict:
    return s.api("GET", f"/nodes/{node}/qemu/{vmid}/status/current").data


def resource(s: Simulator, vmid) -> dict:
    r = s.api("GET", "/cluster/resources", params={"type": "vm"})
    return next((e for e in r.data if e["vmid"] == vmid), None)


def start_vm_sim() -> Simulator:
    # CTs 100-101; VMs 102-107 round-robin on pve1/pve2: 102 paused (pve1), 103 stopped (pve2),
    # 104 template (pve1), 105 running (pve2), 106 running (pve1), 107 running without agent.
    return Simulator("--nodes", "pve1,pve2", "--cts", "2", "--vms", "6", "--vms-paused", "1",
                     "--vms-stopped", "1", "--vm-templates", "1", "--vms-without-agent", "1",
                     "--auth-delay", str(AUTH_DELAY), "--task-seconds", str(TASK_SECONDS),
                     "--lock-timeout", "1", "--agent-timeout", "0.3", https=False)


def test_qemu_reads(s: Simulator):
    r = s.api("GET", "/cluster/resources", params={"type": "vm"})
    by = {e["vmid"]: e for e in r.data}
    check("VMs in resources", sorted(by) == list(range(100, 108)) and
          all(by[v]["type"] == "qemu" and by[v]["id"] == f"qemu/{v}" for v in range(102, 108)),
          r)
    want = {"id", "type", "vmid", "node", "status", "name", "template", "uptime", "maxcpu", "cpu",
            "maxmem", "mem", "maxdisk", "disk", "netin", "netout", "diskread", "diskwrite"}
    check("VM resource fields", want <= set(by[105]), sorted(want - set(by[105])))
    check("VM resource statuses", [by[v]["status"] for v in range(102, 108)] ==
          ["paused", "stopped", "stopped", "running", "running", "running"] and
          [by[v]["template"] for v in range(102, 108)] == [0, 0, 1, 0, 0, 0] and
          by[105]["netin"] > 0 and by[103]["netin"] == 0, by)
    r = s.api("GET", "/nodes/pve1/qemu")
    check("qemu list: this node's VMs, no qmpstatus", r.status == 200 and
          sorted(v["vmid"] for v in r.data) == [102, 104, 106] and
          all("qmpstatus" not in v and "ha" not in v for v in r.data), r)
    r = s.api("GET", "/nodes/pve1/qemu", params={"full": 1})
    check("qemu list full=1: qmpstatus", {v["vmid"]: v["qmpstatus"] for v in r.data} ==
          {102: "paused", 104: "stopped", 106: "running"}, r)
    d = vm_current(s, "pve1", 102)
    check("paused VM: status running, qmpstatus paused", d["status"] == "running" and
          d["qmpstatus"] == "paused" and d["agent"] == 1 and d["ha"] == {"managed": 0} and
          "pid" in d, d)
    d = vm_current(s, "pve2", 103)
    check("stopped VM: qmpstatus stopped, no pid", d["status"] == "stopped" and
          d["qmpstatus"] == "stopped" and "pid" not in d and d["uptime"] == 0, d)
    check("template and no-agent VMs", vm_current(s, "pve1", 104).get("template") == 1 and
          "agent" not in vm_current(s, "pve2", 107), vm_current(s, "pve2", 107))
    r = s.api("GET", "/nodes/pve1/qemu/999/status/current")
    check("missing VM: 500", (r.status, r.reason) ==
          (500, "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"), r)
    r = s.api("GET", "/nodes/pve1/qemu/105/status/current")
    check("VM on the wrong node looks missing", r.status == 500 and
          "nodes/pve1/qemu-server/105.conf" in r.reason, r)
    r = s.api("GET", "/nodes/pve1/lxc/102/status/current")
    check("a VM is no CT", r.status == 500 and "nodes/pve1/lxc/102.conf" in r.reason, r)
    r = s.api("GET", "/nodes/pve1/qemu/106/config")
    check("VM config", r.status == 200 and r.data["agent"] == "1" and
          r.data["net0"].startswith("virtio="), r)


def test_qemu_lifecycle(s: Simulator):
    r = s.api("POST", "/nodes/pve1/qemu/106/status/start")
    t = s.wait_task("pve1", r.data)
    check("start a running VM: a task that fails", ":qmstart:106:" in r.data and
          t["exitstatus"] == "VM 106 already running", t)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/stop")
    t = s.wait_task("pve2", r.data)
    check("stop a stopped VM: qmstop OK", ":qmstop:103:" in r.data and t["exitstatus"] == "OK", t)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/shutdown")
    t = s.wait_task("pve2", r.data)
    check("shutdown a stopped VM: qmshutdown OK", ":qmshutdown:103:" in r.data and
          t["exitstatus"] == "OK", t)
    for action, msg in (("reboot", "VM 103 not running"), ("suspend", "VM 103 not running"),
                        ("resume", "VM 103 not running"), ("reset", "VM 103 not running")):
        r = s.api("POST", f"/nodes/pve2/qemu/103/status/{action}")
        check(f"VM {action} precheck", (r.status, r.reason) == (500, msg), r)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/start")
    t = s.wait_task("pve2", r.data)
    d = vm_current(s, "pve2", 103)
    check("VM start", t["exitstatus"] == "OK" and d["status"] == "running" and
          d["qmpstatus"] == "running", (t, d))

    r = s.api("POST", "/nodes/pve2/qemu/103/status/suspend")
    t = s.wait_task("pve2", r.data)
    d = vm_current(s, "pve2", 103)
    check("suspend is qmpause: paused", ":qmpause:103:" in r.data and t["exitstatus"] == "OK"
          and d["status"] == "running" and d["qmpstatus"] == "paused", (t, d))
    check("paused in resources", resource(s, 103)["status"] == "paused")
    r = s.api("POST", "/nodes/pve2/qemu/103/status/suspend")
    t = s.wait_task("pve2", r.data)
    check("suspend a paused VM: qmpause OK", t["exitstatus"] == "OK" and
          vm_current(s, "pve2", 103)["qmpstatus"] == "paused", t)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/shutdown")
    check("shutdown of a paused VM: 500", (r.status, r.reason) ==
          (500, "VM is paused - cannot shutdown"), r)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/reboot")
    check("reboot of a paused VM: 500", (r.status, r.reason) ==
          (500, "VM is paused - cannot shutdown"), r)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/resume")
    t = s.wait_task("pve2", r.data)
    check("resume: qmresume, running", ":qmresume:103:" in r.data and t["exitstatus"] == "OK"
          and vm_current(s, "pve2", 103)["qmpstatus"] == "running", t)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/resume")
    t = s.wait_task("pve2", r.data)
    check("resume a running VM: qmresume OK", t["exitstatus"] == "OK", t)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/suspend")
    s.wait_task("pve2", r.data)
    r = s.api("POST", "/nodes/pve2/qemu/103/status/shutdown", params={"forceStop": 1})
    t = s.wait_task("pve2", r.data)
    check("shutdown of a paused VM with forceStop=1 stops it", ":qmshutdown:" in r.data and
          t["exitstatus"] == "OK" and vm_current(s, "pve2", 103)["status"] == "stopped", t)

    r = s.api("POST", "/nodes/pve1/qemu/106/status/suspend", params={"todisk": 1})
    t = s.wait_task("pve1", r.data)
    d = vm_current(s, "pve1", 106)
    check("suspend todisk=1 is qmsuspend: stopped, lock suspended",
          ":qmsuspend:106:" in r.data and t["exitstatus"] == "OK" and
          d["status"] == "stopped" and d.get("lock") == "suspended", (t, d))
    r = s.api("POST", "/nodes/pve1/qemu/106/status/resume")
    t = s.wait_task("pve1", r.data) if r.status == 200 else {}
    d = vm_current(s, "pve1", 106)
    check("resume of a hibernated VM starts it", t.get("exitstatus") == "OK" and
          d["status"] == "running" and "lock" not in d, (r, d))

    r = s.api("POST", "/nodes/pve1/qemu/106/status/reboot")
    t = s.wait_task("pve1", r.data)
    d = vm_current(s, "pve1", 106)
    check("qmreboot ends once the VM is down", ":qmreboot:106:" in r.data and
          t["exitstatus"] == "OK" and d["status"] == "stopped", (t, d))
    ok = False
    end = time.monotonic() + 3
    while time.monotonic() < end and not ok:
        ok = vm_current(s, "pve1", 106)["status"] == "running"
        time.sleep(0.05)
    starts = s.api("GET", "/nodes/pve1/tasks", params={"vmid": 106, "typefilter": "qmstart",
                                                        "limit": 1}).data
    check("then qmeventd's qmstart (root@pam) starts it", ok and starts and
          starts[0]["user"] == "root@pam" and "tokenid" not in starts[0] and
          starts[0]["starttime"] >= t["starttime"], starts)
    r = s.api("POST", "/nodes/pve1/qemu/106/status/reset")
    t = s.wait_task("pve1", r.data)
    check("reset: qmreset", ":qmreset:106:" in r.data and t["exitstatus"] == "OK" and
          vm_current(s, "pve1", 106)["status"] == "running", t)

    s.sim("POST", "/vm/105", {"ignore_shutdown": True})
    r = s.api("POST", "/nodes/pve2/qemu/105/status/shutdown", params={"timeout": 1})
    t = s.wait_task("pve2", r.data)
    check("ignoring VM, forceStop=0: timeout failure", t["exitstatus"] ==
          "VM quit/powerdown failed - got timeout" and
          vm_current(s, "pve2", 105)["status"] == "running", t)
    r = s.api("POST", "/nodes/pve2/qemu/105/status/shutdown", params={"timeout": 1,
                                                                      "forceStop": 1})
    t = s.wait_task("pve2", r.data)
    check("ignoring VM, forceStop=1: killed, task OK", t["exitstatus"] == "OK" and
          vm_current(s, "pve2", 105)["status"] == "stopped", t)
    s.sim("POST", "/vm/105", {"ignore_shutdown": False})

    r = s.api("POST", "/nodes/pve1/qemu/104/status/start")
    t = s.wait_task("pve1", r.data)
    check("start a template VM", t["exitstatus"] == "you can't start a vm if it's a template", t)
    s.sim("POST", "/vm/105", {"lock": "backup"})
    r = s.api("POST", "/nodes/pve2/qemu/105/status/start")
    t = s.wait_task("pve2", r.data)
    check("start a locked VM", t["exitstatus"] == "VM is locked (backup)", t)
    s.sim("POST", "/vm/105", {"lock": None})
    r = s.api("POST", "/nodes/pve1/qemu/999/status/start")
    t = s.wait_task("pve1", r.data)
    check("start a missing VM: failing task", t["exitstatus"] ==
          "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist", t)
    r = s.api("POST", "/nodes/pve1/qemu/999/status/reboot")
    check("reboot a missing VM: 500", (r.status, r.reason) ==
          (500, "unable to find configuration file for VM 999 on node 'pve1'"), r)
    r = s.api("POST", "/nodes/pve1/qemu/102/status/shutdown", params={"forceStop": "true"})
    check("VM params are checked", r.status == 400 and "forceStop" in r.json["errors"], r)

    s.sim("POST", "/vm/105", {"ha": True})
    r = s.api("POST", "/nodes/pve2/qemu/105/status/start")
    t = s.wait_task("pve2", r.data)
    check("HA VM: hastart", ":hastart:105:" in r.data and t["exitstatus"] == "OK", t)
    end = time.monotonic() + 3
    while time.monotonic() < end and vm_current(s, "pve2", 105)["status"] != "running":
        time.sleep(0.05)
    types = [x["type"] for x in s.api("GET", "/nodes/pve2/tasks",
                                       params={"vmid": 105, "limit": 2}).data]
    check("HA VM: then qmstart", types == ["qmstart", "hastart"] and
          vm_current(s, "pve2", 105)["ha"] == {"managed": 1, "state": "started"}, types)
    r = s.api("POST", "/nodes/pve2/qemu/105/status/shutdown", params={"timeout": 5})
    check("HA VM shutdown: hastop", ":hastop:105:" in (r.data or ""), r)
    s.wait_task("pve2", r.data)
    end = time.monotonic() + 3
    while time.monotonic() < end and vm_current(s, "pve2", 105)["status"] != "stopped":
        time.sleep(0.05)
    t = s.api("GET", "/nodes/pve2/tasks", params={"vmid": 105, "limit": 1}).data[0]
    check("HA VM: then qmshutdown by root@pam", t["type"] == "qmshutdown" and
          t["user"] == "root@pam" and vm_current(s, "pve2", 105)["status"] == "stopped", t)
    s.sim("POST", "/vm/105", {"ha": False, "status": "running"})

    r = s.sim("POST", "/vm", {"vmid": 300, "node": "pve2", "status": "running"})
    check("control: create VM", r.status == 200 and r.json["qmpstatus"] == "running" and
          resource(s, 300)["type"] == "qemu" and
          s.api("GET", "/nodes/pve2/tasks", params={"vmid": 300}).data[0]["type"] == "qmcreate",
          r)
    s.sim("DELETE", "/vm/300")
    check("control: destroy VM", resource(s, 300) is None and s.api(
        "GET", "/nodes/pve2/tasks", params={"vmid": 300, "limit": 1}).data[0]["type"] ==
        "qmdestroy")
    r = s.sim("POST", "/vm/102/action/resume")
    t = s.wait_task("pve1", r.json["upid"])
    check("control: VM action as root@pam", t["user"] == "root@pam" and
          vm_current(s, "pve1", 102)["qmpstatus"] == "running", t)
    s.sim("POST", "/vm/102", {"status": "paused"})
    check("control: pause a VM from outside", vm_current(s, "pve1", 102)["qmpstatus"] == "paused")


def test_readiness(s: Simulator):
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces")
    result = (r.data or {}).get("result", [])
    names = [i["name"] for i in result]
    nic = result[-1] if result else {}
    check("agent: interfaces with addresses", r.status == 200 and names == ["lo", "ens18"] and
          {a["ip-address-type"] for a in nic["ip-addresses"]} == {"ipv4", "ipv6"} and
          nic["hardware-address"].startswith("bc:24:11:"), r)
    r = s.api("GET", "/nodes/pve2/qemu/107/agent/network-get-interfaces")
    check("no agent configured: 500", (r.status, r.reason) ==
          (500, "No QEMU guest agent configured"), r)
    r = s.api("GET", "/nodes/pve1/qemu/104/agent/network-get-interfaces")
    check("agent of a stopped VM: 500", (r.status, r.reason) == (500, "VM 104 is not running"), r)
    t0 = time.monotonic()
    r = s.api("GET", "/nodes/pve1/qemu/102/agent/network-get-interfaces")
    took = time.monotonic() - t0
    check("agent of a paused VM: not running, after the ping timeout",
          (r.status, r.reason) == (500, "QEMU guest agent is not running") and took >= 0.28,
          (r, took))
    r = s.api("GET", "/nodes/pve1/qemu/999/agent/network-get-interfaces")
    check("agent of a missing VM", r.status == 500 and "999.conf' does not exist" in r.reason, r)

    s.sim("POST", "/vm/105", {"status": "stopped"})
    s.sim("POST", "/vm/105", {"agent_delay": 0.5, "ip_delay": 1.0})
    r = s.api("POST", "/nodes/pve2/qemu/105/status/start")
    s.wait_task("pve2", r.data)
    started = time.monotonic()
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces")
    check("agent not up yet while the guest boots", r.reason == "QEMU guest agent is not running",
          r)
    while time.monotonic() - started < 0.6:
        time.sleep(0.05)
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces")
    nic = r.data["result"][-1] if r.status == 200 else {}
    check("agent up, only the IPv6 link-local address yet", r.status == 200 and
          nic.get("name") == "ens18" and
          [(a["ip-address-type"], a["ip-address"][:5]) for a in nic["ip-addresses"]] ==
          [("ipv6", "fe80:")], r)
    while time.monotonic() - started < 1.1:
        time.sleep(0.05)
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces")
    nic = r.data["result"][-1] if r.status == 200 else {}
    check("address after ip_delay", any(a["ip-address-type"] == "ipv4"
                                        for a in nic.get("ip-addresses", [])), r)
    check("control reports readiness", s.sim("GET", "/vm/105").json["ready"] is True)
    s.sim("POST", "/vm/106", {"network": False})
    r = s.api("GET", "/nodes/pve1/qemu/106/agent/network-get-interfaces")
    check("VM without a NIC: only lo", [i["name"] for i in r.data["result"]] == ["lo"], r)

    r = s.api("GET", "/nodes/pve1/lxc/100/interfaces")
    eth = r.data[-1] if r.status == 200 and r.data else {}
    check("CT interfaces", [i["name"] for i in r.data] == ["lo", "eth0"] and
          eth["inet"].endswith("/24") and eth["hwaddr"] == eth["hardware-address"] and
          {a["ip-address-type"] for a in eth["ip-addresses"]} == {"inet", "inet6"}, r)
    s.sim("POST", "/ct/100", {"status": "stopped"})
    r = s.api("GET", "/nodes/pve1/lxc/100/interfaces")
    check("stopped CT: data null", r.status == 200 and r.json == {"data": None}, r)
    r = s.api("GET", "/nodes/pve1/lxc/101/interfaces")
    check("CT on another node: data null", r.status == 200 and r.json == {"data": None}, r)
    s.sim("POST", "/ct/100", {"ip_delay": 0.5, "status": "running"})
    r = s.api("GET", "/nodes/pve1/lxc/100/interfaces")
    eth = r.data[-1]
    check("CT booting: eth0 with only its IPv6 link-local address", "inet" not in eth and
          eth["inet6"].startswith("fe80:") and
          [a["ip-address-type"] for a in eth["ip-addresses"]] == ["inet6"], r)
    time.sleep(0.55)
    r = s.api("GET", "/nodes/pve1/lxc/100/interfaces")
    check("CT address after ip_delay", "inet" in r.data[-1], r)
    s.sim("POST", "/ct/100", {"network": False})
    r = s.api("GET", "/nodes/pve1/lxc/100/interfaces")
    check("CT without network: only lo", [i["name"] for i in r.data] == ["lo"], r)

    s.sim("POST", "/token", {"token": "root@pam!ro=abc", "privileges": ["VM.Audit"]})
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces", auth="root@pam!ro=abc")
    check("agent needs VM.GuestAgent.Audit", r.status == 403 and r.json["message"] ==
          "Permission check failed (/vms/105, VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted)\n",
          r)
    s.sim("POST", "/token", {"token": "root@pam!ga=abc",
                             "privileges": ["VM.Audit", "VM.GuestAgent.Audit"]})
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces", auth="root@pam!ga=abc")
    check("agent with VM.GuestAgent.Audit", r.status == 200, r)


def test_default_auth_delay(s: Simulator):
    """pveproxy answers every 401 after ~3 s; the simulator does so unless told otherwise."""
    results = {}

    def timed(name, fn):
        t0 = time.monotonic()
        r = fn()
        results[name] = (r, time.monotonic() - t0)

    calls = {
        "bad password": lambda: s.api("POST", "/access/ticket", auth=None,
                                      params={"username": "root@pam", "password": "nope"}),
        "bad token": lambda: s.api("GET", "/version", auth="root@pam!bridge=wrong"),
        "no credentials": lambda: s.api("GET", "/version", auth=None),
    }
    threads = [threading.Thread(target=timed, args=(k, f)) for k, f in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, (r, took) in sorted(results.items()):
        check(f"default auth delay: {name} answered 401 after ~3 s",
              r.status == 401 and 2.9 <= took < 4.5, (r, took))
    t0 = time.monotonic()
    r = s.api("GET", "/version")
    check("no delay for a good token", r.status == 200 and time.monotonic() - t0 < 1, r)


def test_faults(s: Simulator):
    # CTs 100 (pve1), 101 (pve2), 102 (pve1), 103 (pve2); VMs 104 (pve1), 105 (pve2).
    # A node partitioned away mid-task: the task goes on there; the API can't reach it.
    r = s.api("POST", "/nodes/pve2/lxc/101/status/shutdown")
    upid = r.data
    s.sim("POST", "/node/pve2", {"online": False})
    r = s.api("GET", f"/nodes/pve2/tasks/{upid}/status")
    check("node offline mid-task: 595 Connection refused, empty body",
          (r.status, r.reason, r.body) == (595, "Connection refused", b""), r)
    listed = [t for t in s.api("GET", "/cluster/tasks").data if t["upid"] == upid]
    time.sleep(TASK_SECONDS + 0.2)
    listed_later = [t for t in s.api("GET", "/cluster/tasks").data if t["upid"] == upid]
    check("offline node: /cluster/tasks keeps its last broadcast",
          len(listed) == 1 and "status" not in listed[0] and listed_later == listed, listed_later)
    s.sim("POST", "/node/pve2", {"online": True})
    t = s.wait_task("pve2", upid)
    check("partition: the task ended normally meanwhile", t["exitstatus"] == "OK" and
          s.status("pve2", 101) == "stopped", t)
    listed = [t for t in s.api("GET", "/cluster/tasks").data if t["upid"] == upid]
    check("node back: /cluster/tasks shows the end", listed and listed[0]["status"] == "OK" and
          "endtime" in listed[0], listed)

    # A node that crashes mid-task: the task dies without an end line.
    r = s.api("POST", "/nodes/pve2/lxc/103/status/shutdown", params={"timeout": 30})
    upid = r.data
    s.sim("POST", "/node/pve2", {"online": False, "crash": True, "reason": "No route to host"})
    r = s.api("GET", "/nodes/pve2/lxc/103/status/current")
    check("node down: its own proxy error", (r.status, r.reason) == (595, "No route to host"), r)
    s.sim("POST", "/node/pve2", {"online": True})
    t = s.wait_task("pve2", upid)
    check("crash: the task ends 'unexpected status', the guests are down",
          t["exitstatus"] == "unexpected status" and s.status("pve2", 103) == "stopped" and
          vm_current(s, "pve2", 105)["status"] == "stopped", t)
    nodes = s.api("GET", "/nodes").data
    check("crash: the node rebooted", nodes[1]["uptime"] < 10, nodes)
    s.sim("POST", "/node/pve2", {"reason": "Connection refused"})
    for g in ("ct/101", "ct/103", "vm/105"):
        s.sim("POST", "/" + g, {"status": "running"})

    # A task that never ends holds the guest's config lock.
    s.sim("POST", "/ct/100", {"hang": True})
    r = s.api("POST", "/nodes/pve1/lxc/100/status/shutdown")
    hung = r.data
    time.sleep(TASK_SECONDS + 0.3)
    st = s.api("GET", f"/nodes/pve1/tasks/{hung}/status").data
    check("hang: the task is still running", st["status"] == "running" and
          s.status("pve1", 100) == "running", st)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/stop")
    t = s.wait_task("pve1", r.data)
    check("hang: the next task waits for the lock and fails",
          t["exitstatus"] == "can't lock file '/run/lock/lxc/pve-config-100.conf' - got timeout", t)
    s.api("DELETE", f"/nodes/pve1/tasks/{hung}")
    t = s.wait_task("pve1", hung)
    check("hang: stopping the task ends it", t["exitstatus"] == "received interrupt", t)
    r = s.api("POST", "/nodes/pve1/lxc/100/status/shutdown")
    time.sleep(TASK_SECONDS + 0.2)
    s.sim("POST", "/ct/100", {"hang": False})
    t = s.wait_task("pve1", r.data)
    check("hang cleared: the task finishes", t["exitstatus"] == "OK" and
          s.status("pve1", 100) == "stopped", t)

    # Locks.
    s.sim("POST", "/ct/102", {"lock": "backup"})
    check("lock shows in status/current", s.api(
        "GET", "/nodes/pve1/lxc/102/status/current").data.get("lock") == "backup")
    for action in ("stop", "shutdown"):
        r = s.api("POST", f"/nodes/pve1/lxc/102/status/{action}")
        t = s.wait_task("pve1", r.data)
        check(f"locked CT: {action} task fails", t["exitstatus"] == "CT is locked (backup)" and
              s.status("pve1", 102) == "running", t)
    s.sim("POST", "/ct/102", {"lock": None})
    s.sim("POST", "/vm/104", {"lock": "backup"})
    r = s.api("POST", "/nodes/pve1/qemu/104/status/shutdown")
    t = s.wait_task("pve1", r.data)
    check("locked VM: shutdown task fails", t["exitstatus"] == "VM is locked (backup)", t)
    s.sim("POST", "/vm/104", {"lock": None})

    # Migration between two polls.
    r = s.sim("POST", "/ct/101/migrate", {"target": "pve1"})
    upid = r.json["upid"]
    check("migrate: a vzmigrate task on the source", ":vzmigrate:101:root@pam:" in upid and
          upid.startswith("UPID:pve2:"), r)
    time.sleep(0.05)
    e = resource(s, 101)
    r = s.api("POST", "/nodes/pve2/lxc/101/status/start")
    t = s.wait_task("pve2", r.data) if r.status == 200 else {}
    check("migrating: lock migrate, actions fail", e.get("lock") == "migrate" and
          t.get("exitstatus") == "CT is locked (migrate)", (e, r, t))
    t = s.wait_task("pve2", upid)
    e = resource(s, 101)
    check("migrated: the node changed, running there", t["exitstatus"] == "OK" and
          e["node"] == "pve1" and "lock" not in e and s.status("pve1", 101) == "running", (t, e))
    r = s.api("GET", "/nodes/pve2/lxc/101/status/current")
    check("old node: the CT looks missing", (r.status, r.reason) ==
          (500, "Configuration file 'nodes/pve2/lxc/101.conf' does not exist"), r)
    r = s.api("POST", "/nodes/pve2/lxc/101/status/shutdown")
    check("old node: shutdown says not running", (r.status, r.reason) ==
          (500, "CT 101 not running"), r)
    r = s.sim("POST", "/vm/105/migrate", {"target": "pve1", "instant": True})
    check("instant VM migration: a finished qmigrate",
          ":qmigrate:105:" in r.json["upid"] and resource(s, 105)["node"] == "pve1" and
          vm_current(s, "pve1", 105)["status"] == "running", r)
    r = s.api("GET", "/nodes/pve2/qemu/105/agent/network-get-interfaces")
    check("old node: the VM looks missing", r.status == 500 and
          r.reason == "Configuration file 'nodes/pve2/qemu-server/105.conf' does not exist", r)

    # HA: the API only hands the request to the HA stack.
    s.sim("POST", "/ct/102", {"ha": True})
    r = s.api("POST", "/nodes/pve1/lxc/102/status/stop", params={"overrule-shutdown": 1})
    check("HA CT: overrule-shutdown is a 400", r.status == 400 and
          "overrule-shutdown" in r.json["errors"], r)
    r = s.api("POST", "/nodes/pve1/lxc/102/status/shutdown")
    t = s.wait_task("pve1", r.data)
    check("HA CT shutdown: hastop, the CT still runs", ":hastop:102:" in r.data and
          t["exitstatus"] == "OK" and s.status("pve1", 102) == "running", t)
    check("HA CT: then vzshutdown", s.wait_status("pve1", 102, "stopped", deadline=3) and
          s.api("GET", "/nodes/pve1/tasks", params={"vmid": 102, "limit": 1})
          .data[0]["type"] == "vzshutdown")


def test_cluster_tasks(s: Simulator):
    # CTs 100 (pve1), 101 (pve2), 102 (pve1), 103 (pve2)
    s.sim("POST", "/ct/100", {"status": "stopped"})

    def listed(upid):
        return next((t for t in s.api("GET", "/cluster/tasks").data if t["upid"] == upid), None)

    r = s.api("POST", "/nodes/pve1/lxc/100/status/start")
    upid = r.data
    t = listed(upid)
    check("/cluster/tasks: a task is listed as soon as it starts, without end",
          t is not None and "status" not in t and "endtime" not in t and "pstart" not in t and
          t["pid"] > 0 and (t["type"], t["id"], t["user"], t["tokenid"], t["node"]) ==
          ("vzstart", "100", "root@pam", "bridge", "pve1") and t["starttime"] > 0, t)
    s.wait_task("pve1", upid)
    t = listed(upid)
    check("/cluster/tasks: and with its end as soon as it ends", t is not None and
          t["status"] == "OK" and t["endtime"] >= t["starttime"] and "pid" not in t, t)

    gui = s.sim("POST", "/ct/101/action/shutdown").json["upid"]
    t = listed(gui)
    check("/cluster/tasks: changes made outside the bridge (GUI, root@pam)",
          t is not None and t["user"] == "root@pam" and "tokenid" not in t, t)
    s.sim("POST", "/token", {"token": "root@pam!ro=abc", "privileges": ["VM.Audit"]})
    r = s.api("GET", "/cluster/tasks", auth="root@pam!ro=abc")
    check("/cluster/tasks without Sys.Audit: a token sees none (its tasks' user is the user)",
          r.status == 200 and r.data == [], r)
    s.wait_task("pve2", gui)

    for i in range(15):          # 30 finished tasks on pve1
        s.sim("POST", "/ct", {"vmid": 500 + i, "node": "pve1"})
        s.sim("DELETE", f"/ct/{500 + i}")
    running = s.api("POST", "/nodes/pve1/lxc/102/status/shutdown").data
    tasks = s.api("GET", "/cluster/tasks").data
    pve1 = [t for t in tasks if t["node"] == "pve1"]
    nodes = [t["node"] for t in tasks]
    check("/cluster/tasks: per node, running ones first, then finished up to 25 in all",
          len(pve1) == 25 and pve1[0]["upid"] == running and
          all("status" in t for t in pve1[1:]) and
          nodes == sorted(nodes) and
          [t["starttime"] for t in pve1[1:]] == sorted((t["starttime"] for t in pve1[1:]),
                                                       reverse=True), pve1[:3])
    check("/cluster/tasks: the newest finished ones", pve1[1]["type"] == "vzdestroy" and
          pve1[1]["id"] == "514", pve1[1])
    s.wait_task("pve1", running)


LAG = 1.0


def wait_publish(s: Simulator, vmid) -> float:
    """Wait until pvestatd publishes `vmid`'s node again (its frozen uptime moves on)."""
    first = resource(s, vmid)["uptime"]
    end = time.monotonic() + LAG * 3
    while time.monotonic() < end:
        if resource(s, vmid)["uptime"] != first:
            return time.monotonic()
        time.sleep(0.03)
    raise AssertionError(f"no pvestatd update for {vmid}")


def test_resources_lag(s: Simulator):
    a, b = resource(s, 100), resource(s, 100)
    check("lag: a snapshot, not live (uptime frozen between updates)", a == b, (a, b))
    published = wait_publish(s, 100)
    s.sim("POST", "/ct/100", {"status": "stopped"})
    check("lag: status/current is live", s.status("pve1", 100) == "stopped")
    stale = []
    while time.monotonic() - published < LAG * 0.7:
        stale.append(resource(s, 100)["status"])
        time.sleep(0.05)
    check("lag: resources stay stale until the node's next update, however often one polls",
          len(stale) > 5 and set(stale) == {"running"}, stale)
    fresh = None
    while time.monotonic() - published < LAG * 1.6:
        if resource(s, 100)["status"] == "stopped":
            fresh = time.monotonic() - published
            break
        time.sleep(0.03)
    check("lag: fresh after one period", fresh is not None and fresh >= LAG * 0.7, fresh)

    # Updates follow pvestatd's clock, not the requests: after a quiet spell longer than the
    # period, the first request still gets the data of the last update.
    published = wait_publish(s, 102)     # 100 is stopped now; 102 runs on the same node
    time.sleep(LAG * 1.2)
    s.sim("POST", "/ct/100", {"status": "running"})
    e = resource(s, 100)
    check("lag: updates follow pvestatd's clock, not the requests",
          e["status"] == "stopped" and time.monotonic() - published < LAG * 1.9, e)

    s.sim("POST", "/ct/100", {"lock": "backup", "tags": "a;b"})
    e = resource(s, 100)
    check("lag: lock and tags (config) are live", e.get("lock") == "backup" and
          e.get("tags") == "a;b", e)
    s.sim("POST", "/ct/100", {"lock": None, "tags": None})

    s.sim("POST", "/ct", {"vmid": 200, "node": "pve1", "name": "fresh", "status": "running"})
    e = resource(s, 200)
    check("created guest: listed at once, status unknown, no name", e is not None and
          e["status"] == "unknown" and "name" not in e and "uptime" not in e and
          e["node"] == "pve1" and e["type"] == "lxc", e)
    end = time.monotonic() + LAG * 2
    while time.monotonic() < end and resource(s, 200)["status"] == "unknown":
        time.sleep(0.05)
    e = resource(s, 200)
    check("created guest: data after the next update", e["status"] == "running" and
          e["name"] == "fresh", e)
    s.sim("DELETE", "/ct/200")
    check("destroyed guest: gone at once", resource(s, 200) is None)

    s.sim("POST", "/node/pve2", {"online": False})
    t0 = time.monotonic()
    e = resource(s, 101)
    check("offline node: its guests keep their last data for a while",
          e["status"] == "running" and e["name"] == "ct101", e)
    gone = None
    while time.monotonic() - t0 < 4:
        e = resource(s, 101)
        if e["status"] == "unknown":
            gone = time.monotonic() - t0
            break
        time.sleep(0.05)
    check("offline node: unknown once the data ages out (--stats-expire)",
          gone is not None and gone >= 1.0 and set(e) == {"id", "type", "vmid", "node", "status"},
          (gone, e))
    nodes = s.api("GET", "/cluster/resources", params={"type": "node"}).data
    check("offline node in resources", [n["status"] for n in nodes] == ["online", "offline"] and
          "uptime" not in nodes[1], nodes)
    s.sim("POST", "/node/pve2", {"online": True})
    end = time.monotonic() + LAG * 2
    while time.monotonic() < end and resource(s, 101)["status"] == "unknown":
        time.sleep(0.05)
    check("node back: data again after its next update", resource(s, 101)["status"] == "running")
    r = s.sim("POST", "/pvestatd", {})
    check("control: publish now", r.status == 200 and r.json["published"] == ["pve1", "pve2"], r)


def test_scale():
    s = Simulator("--cts", "1000", "--nodes", "pve1,pve2,pve3", https=False)
    try:
        check("1000 CTs start in under a second", s.startup < 1.0, s.startup)
        t0 = time.monotonic()
        r = s.api("GET", "/cluster/resources", params={"type": "vm"})
        took = time.monotonic() - t0
        check("resources for 1000 CTs", r.status == 200 and len(r.data) == 1000 and took < 0.5,
              (r.status, took))
        check("plain http line", s.line.startswith("pve-simulator listening on http://"))
    finally:
        check("SIGTERM exits 0", s.stop() == 0)


def run_group(name: str, make, tests) -> None:
    """One simulator for `tests`, run in order; a crash fails that test, not the rest."""
    try:
        s = make()
    except Exception:
        check(f"{name}: start", False, traceback.format_exc())
        return
    try:
        for test in tests:
            try:
                test(s)
            except Exception:
                check(test.__name__, False, traceback.format_exc())
    finally:
        check(f"{name}: SIGTERM exits 0", s.stop() == 0)


def main() -> int:
    started = time.monotonic()
    groups = [
        ("lxc", lambda: Simulator("--nodes", "pve1,pve2", "--cts", "6", "--auth-delay",
                                  str(AUTH_DELAY), "--task-seconds", str(TASK_SECONDS),
                                  "--lock-timeout", "2"),
         (test_transport_and_auth, test_reads, test_params, test_lifecycle,
          test_shutdown_timeout, test_suspend_resume, test_ha, test_tasks_and_errors)),
        ("qemu", start_vm_sim, (test_qemu_reads, test_qemu_lifecycle, test_readiness)),
        ("faults", lambda: Simulator("--nodes", "pve1,pve2", "--cts", "4", "--vms", "2",
                                     "--task-seconds", str(TASK_SECONDS), "--lock-timeout", "1",
                                     https=False), (test_faults,)),
        ("tasks", lambda: Simulator("--nodes", "pve1,pve2", "--cts", "4", "--task-seconds",
                                    str(TASK_SECONDS), https=False), (test_cluster_tasks,)),
        ("auth", lambda: Simulator("--cts", "1", https=False), (test_default_auth_delay,)),
        ("lag", lambda: Simulator("--nodes", "pve1,pve2", "--cts", "4", "--resources-lag",
                                  str(LAG), "--stats-expire", "2", https=False),
         (test_resources_lag,)),
    ]
    threads = [threading.Thread(target=run_group, args=g, name=g[0]) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        test_scale()   # alone: it measures speed
    except Exception:
        check("test_scale", False, traceback.format_exc())
    print(f"({time.monotonic() - started:.1f} s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
