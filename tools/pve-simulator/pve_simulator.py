#!/usr/bin/env python3
"""pve-simulator: a Proxmox VE API simulator for the guest lifecycle subset (LXC and QEMU).

It behaves like /work/shared/reference/proxmox-api.md (PVE 9.x, read from the
pve-container, qemu-server, pve-manager, pve-cluster and pve-http-server sources):
same paths, status lines, bodies, UPIDs, task semantics and auth rules, so a client
tested against it meets no surprise on a real cluster.

Standard library only. Run `pve_simulator.py --help`; README.md beside this file
describes the control API (`/_sim/...`) that tests use to steer it.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import hmac
import http
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_TOKEN = "root@pam!bridge=5e0f3c2a-8b1d-4f6e-9a73-2c4b6d8e0f15"
PVE_VERSION = {"version": "9.0.3", "release": "9.0", "repoid": "025864202ebb6109"}
MIB = 1024 * 1024
GIB = 1024 * MIB
MAX_TASKS_PER_NODE = 5000       # finished tasks kept per node (older ones are forgotten)
CLUSTER_TASKS_PER_NODE = 25     # finished tasks per node in /cluster/tasks
HA_TASK_SECONDS = 0.05          # hastart/hastop only hand the request to the HA stack
HA_PICKUP_SECONDS = 0.1         # delay before the HA stack runs the real vzstart/vzstop
QMEVENTD_SECONDS = 0.1          # after a qmreboot task, qmeventd starts the VM again (qmstart)
RRD_EXPIRE_SECONDS = 300        # pmxcfs drops guest data older than this (status.c)

NOT_IN_SCHEMA = ("property is not defined in schema and the schema does not allow "
                 "additional properties")
MISSING_PARAM = "property is missing and it is not optional"
UPID_RE = re.compile(r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):"
                     r"([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$")
TOKEN_RE = re.compile(r"^([^\s@!=]+@[A-Za-z0-9.\-_]+)!([A-Za-z][A-Za-z0-9.\-_]*)$")
PRESSURE_FIELDS = ("pressurecpusome", "pressurecpufull", "pressureiosome",
                   "pressureiofull", "pressurememorysome", "pressurememoryfull")
PRIVILEGES = ("VM.Audit", "VM.PowerMgmt", "VM.Console", "VM.Allocate", "VM.Config.Options",
              "VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted", "VM.Monitor",
              "Sys.Audit", "Sys.Modify", "Sys.PowerMgmt", "Datastore.Audit")


# --------------------------------------------------------------------------- errors

class ApiError(Exception):
    """An API failure as pve-http-server renders it: status, reason phrase, body (None = empty)."""

    def __init__(self, status: int, reason: str, body: dict | None = None):
        super().__init__(reason)
        self.status, self.reason, self.body = status, reason, body


def handler_error(message: str) -> ApiError:
    """`die "message\\n"` inside an API handler: 500, reason = first line."""
    return ApiError(500, message.split("\n")[0], {"data": None, "message": message + "\n"})


def param_error(errors: dict) -> ApiError:
    msg = "Parameter verification failed."
    return ApiError(400, msg, {"data": None, "errors": errors, "message": msg + "\n"})


def perm_error(path: str, priv) -> ApiError:
    if not isinstance(priv, str):
        priv = "|".join(priv)   # check_any: any of them will do
    msg = f"Permission check failed ({path}, {priv})"
    return ApiError(403, msg, {"data": None, "message": msg + "\n"})


def missing_conf(node: str, vmid, kind: str = "lxc") -> str:
    """load_config of a guest that is not on this node (PVE::AbstractConfig)."""
    directory = "qemu-server" if kind == "qemu" else "lxc"
    return f"Configuration file 'nodes/{node}/{directory}/{vmid}.conf' does not exist"


def vm_not_found(node: str, vmid) -> str:
    """qemu-server's check_running on a VM whose config is not on this node."""
    return f"unable to find configuration file for VM {vmid} on node '{node}'"


class TaskFailed(Exception):
    """A worker died; the text becomes the task's exitstatus."""


class TaskAborted(Exception):
    """A worker was killed (DELETE on the task, or `overrule-shutdown`)."""



# --------------------------------------------------------------------------- model

class Node:
    def __init__(self, name: str, index: int):
        self.name, self.index, self.online = name, index, True
        # The second node has been up ~620 days so its UPID pstart needs 9 hex digits,
        # which the reference warns about.
        days = 620 if index == 1 else 37 + index
        self.boot = time.time() - days * 86400 - index * 3607
        self.last_pid = 0x2F00 + index * 0x1000
        self.ip = f"192.168.100.{11 + index}"
        # While the node is unreachable: its last broadcast task list, what the other
        # nodes keep showing in /cluster/tasks; and how the proxy to it fails.
        self.frozen_tasks: list[dict] | None = None
        self.down_status, self.down_reason = 595, "Connection refused"
        self.crashed = False

    def new_pid(self) -> int:
        self.last_pid += 3 + self.last_pid % 5
        return self.last_pid

    def pstart(self) -> int:
        """Process start time in clock ticks since boot, like /proc/PID/stat."""
        return int((time.time() - self.boot) * 100)

    def uptime(self) -> int:
        return int(time.time() - self.boot)


class Guest:
    """What CTs and VMs share. Mutated only under State.lock."""

    TYPE = ""

    def __init__(self, vmid: int, node: str, name: str):
        self.vmid, self.node, self.name = vmid, node, name
        self.status = "stopped"
        self.started_at = 0.0          # the current process (uptime)
        self.booted_at = 0.0           # the guest OS's last boot (readiness: IP, agent)
        self.pid: int | None = None
        self.template = False
        self.lock: str | None = None
        self.tags: str | None = None
        self.ha = False
        self.ha_state = "stopped"
        self.ignore_shutdown = self.fail_start = False
        self.hang = False              # its lifecycle tasks never end (until aborted/cleared)
        self.network = True            # False: no NIC, only the loopback interface
        self.ip = f"10.{10 + vmid // 65536 % 200}.{vmid // 254 % 256}.{2 + vmid % 254}"
        self.ip_delay = 0.0            # seconds after boot until the guest has its address

    def mac(self, sep=":", upper=True) -> str:
        v = self.vmid
        text = sep.join(["BC", "24", "11", f"{v >> 16 & 255:02X}", f"{v >> 8 & 255:02X}",
                         f"{v & 255:02X}"])
        return text if upper else text.lower()

    def ipv6_link_local(self) -> str:
        v = self.vmid
        return f"fe80::be24:11ff:fe{v >> 16 & 255:02x}:{v & 0xFFFF:x}"

    def has_address(self, now: float) -> bool:
        """The guest's NIC has its IPv4 address (DHCP done, ip_delay after boot)."""
        return self.status == "running" and self.network and now >= self.booted_at + self.ip_delay

    def rrd(self, now: float) -> dict:
        """What pvestatd broadcasts for this guest (extract_vm_stats reads it back)."""
        u = self._usage(now)
        return {"status": self.pvestatd_status(), "name": self.name,
                "template": 1 if self.template else 0, "uptime": u["uptime"],
                "maxcpu": self.cores, "cpu": u["cpu"], "maxmem": self.memory * MIB,
                "mem": u["mem"], "maxdisk": self.disk_size, "disk": u["disk"],
                "netin": u["netin"], "netout": u["netout"], "diskread": u["diskread"],
                "diskwrite": u["diskwrite"], "memhost": u.get("memhost", 0)}

    def pvestatd_status(self) -> str:
        return self.status


class CT(Guest):
    """One LXC container."""

    TYPE = "lxc"

    def __init__(self, vmid: int, node: str, name: str):
        super().__init__(vmid, node, name)
        self.fail_suspend = False
        self.suspended = False          # a CRIU checkpoint exists (made by vzsuspend)
        self.cores = 1 + vmid % 2
        self.memory = 512 * (1 + vmid % 4)   # MiB
        self.swap = 512                      # MiB
        self.disk_size = 8 * GIB

    # -- counters a real CT would show; deterministic so runs are reproducible
    def _usage(self, now: float) -> dict:
        if self.status != "running":
            return {"uptime": 0, "cpu": 0, "mem": 0, "swap": 0, "disk": 0,
                    "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0}
        up = max(0, int(now - self.started_at))
        v = self.vmid
        return {"uptime": up, "cpu": round(0.0021 + (v % 7) * 0.0031, 6),
                "mem": int(self.memory * MIB * (0.08 + (v % 10) / 100)), "swap": 0,
                "disk": int(self.disk_size * (0.12 + (v % 5) / 50)),
                "netin": 1480 * up + 4096 * (v % 13), "netout": 690 * up + 512 * (v % 11),
                "diskread": 52_428_800 + 96 * up, "diskwrite": 2048 * up}

    def status_current(self, now: float, with_ha: bool = True) -> dict:
        """GET .../lxc/{vmid}/status/current (and, without `ha`, the /lxc list)."""
        d = {"vmid": self.vmid, "type": "lxc", "name": self.name, "status": self.status,
             "cpus": self.cores, "maxmem": self.memory * MIB, "maxswap": self.swap * MIB,
             "maxdisk": self.disk_size}
        d.update(self._usage(now))
        for f in PRESSURE_FIELDS:
            d[f] = "0.00"
        if self.status == "running":
            d["pid"] = self.pid
        if self.lock:
            d["lock"] = self.lock
        if self.template:
            d["template"] = 1
        if self.tags:
            d["tags"] = self.tags
        if with_ha:
            d["ha"] = {"managed": 1, "state": self.ha_state} if self.ha else {"managed": 0}
        return d

    def interfaces(self, now: float) -> list:
        """GET .../lxc/{vmid}/interfaces of a running CT: `ip --json a` in its netns."""
        out = [{"name": "lo", "hwaddr": "00:00:00:00:00:00",
                "hardware-address": "00:00:00:00:00:00", "inet": "127.0.0.1/8",
                "inet6": "::1/128", "ip-addresses": [
                    {"ip-address-type": "inet", "ip-address": "127.0.0.1", "prefix": 8},
                    {"ip-address-type": "inet6", "ip-address": "::1", "prefix": 128}]}]
        if self.network:
            # The IPv6 link-local address comes with the link, at boot; the IPv4 address
            # (DHCP) only `ip_delay` later.
            mac = self.mac(upper=False)
            eth = {"name": "eth0", "hwaddr": mac, "hardware-address": mac, "ip-addresses": []}
            if self.has_address(now):
                eth["inet"] = f"{self.ip}/24"
                eth["ip-addresses"].append(
                    {"ip-address-type": "inet", "ip-address": self.ip, "prefix": 24})
            eth["inet6"] = f"{self.ipv6_link_local()}/64"
            eth["ip-addresses"].append({"ip-address-type": "inet6",
                                        "ip-address": self.ipv6_link_local(), "prefix": 64})
            out.append(eth)
        return out

    def config(self) -> dict:
        conf = {"arch": "amd64", "cores": self.cores, "hostname": self.name,
                "memory": self.memory, "swap": self.swap, "ostype": "debian",
                "rootfs": f"local-lvm:vm-{self.vmid}-disk-0,size={self.disk_size // GIB}G",
                "unprivileged": 1}
        if self.network:
            conf["net0"] = (f"name=eth0,bridge=vmbr0,hwaddr={self.mac()},ip=dhcp,type=veth")
        if self.tags:
            conf["tags"] = self.tags
        if self.lock:
            conf["lock"] = self.lock
        if self.template:
            conf["template"] = 1
        text = "\n".join(f"{k}: {v}" for k, v in sorted(conf.items()))
        conf["digest"] = hashlib.sha1(text.encode()).hexdigest()
        return conf

    def internal(self, now: float) -> dict:
        return {"vmid": self.vmid, "type": "lxc", "node": self.node, "name": self.name,
                "status": self.status, "suspended": self.suspended, "template": self.template,
                "lock": self.lock, "tags": self.tags, "ha": self.ha, "ha_state": self.ha_state,
                "ignore_shutdown": self.ignore_shutdown, "fail_start": self.fail_start,
                "fail_suspend": self.fail_suspend, "pid": self.pid, "hang": self.hang,
                "network": self.network, "ip": self.ip, "ip_delay": self.ip_delay,
                "ready": self.status == "running" and (not self.network or self.has_address(now)),
                "uptime": self._usage(now)["uptime"]}


class VM(Guest):
    """One QEMU virtual machine."""

    TYPE = "qemu"

    def __init__(self, vmid: int, node: str, name: str):
        super().__init__(vmid, node, name)
        self.qmpstatus = "running"      # while running: running, paused, prelaunch, suspended
        self.agent = True               # `agent: 1` in the config (qemu-guest-agent configured)
        self.agent_delay = 0.0          # seconds after boot until the agent answers
        self.cores = 2
        self.memory = 2048 * (1 + vmid % 4)   # MiB
        self.disk_size = 32 * GIB

    def pvestatd_status(self) -> str:
        # pvestatd stores `qmpstatus || status`: a paused VM reads `paused` there.
        return self.qmpstatus if self.status == "running" else "stopped"

    def _usage(self, now: float) -> dict:
        if self.status != "running":
            return {"uptime": 0, "cpu": 0, "mem": 0, "memhost": 0, "disk": 0,
                    "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0}
        up = max(0, int(now - self.started_at))
        v = self.vmid
        busy = self.qmpstatus == "running"
        mem = int(self.memory * MIB * (0.21 + (v % 10) / 50))
        return {"uptime": up, "cpu": round(0.0113 + (v % 5) * 0.004, 6) if busy else 0,
                "mem": mem, "memhost": mem + 96 * MIB, "disk": 0,
                "netin": 2960 * up + 8192 * (v % 13), "netout": 1380 * up + 1024 * (v % 11),
                "diskread": 314_572_800 + 512 * up, "diskwrite": 8192 * up}

    def agent_up(self, now: float) -> bool:
        """qga_check_running: the agent answers guest-ping (the guest runs and has booted)."""
        return (self.agent and self.status == "running" and self.qmpstatus == "running"
                and now >= self.booted_at + self.agent_delay)

    def status_current(self, now: float, full: bool = True) -> dict:
        """GET .../qemu/{vmid}/status/current (full) or one entry of GET .../qemu."""
        running = self.status == "running"
        d = {"vmid": self.vmid, "name": self.name, "status": self.status, "cpus": self.cores,
             "maxmem": self.memory * MIB, "maxdisk": self.disk_size}
        u = self._usage(now)
        for k in ("disk", "uptime", "cpu", "mem", "memhost", "netin", "netout"):
            d[k] = u[k]
        if running:
            d["pid"] = self.pid
            for f in PRESSURE_FIELDS:
                d[f] = 0
        if self.template:
            d["template"] = 1
        if self.lock:
            d["lock"] = self.lock
        if self.tags:
            d["tags"] = self.tags
        if full:
            d["qmpstatus"] = self.qmpstatus if running else "stopped"
            if running:
                d.update({"diskread": u["diskread"], "diskwrite": u["diskwrite"],
                          "running-machine": "pc-i440fx-10.0+pve1", "running-qemu": "10.0.2",
                          "proxmox-support": {}, "balloon": self.memory * MIB,
                          "freemem": self.memory * MIB - u["mem"]})
            d["ha"] = {"managed": 1, "state": self.ha_state} if self.ha else {"managed": 0}
            if self.agent:
                d["agent"] = 1
        return d

    def agent_interfaces(self, now: float) -> list:
        """guest-network-get-interfaces as qemu-guest-agent answers it."""
        def stats(k):
            return {"rx-bytes": 1200 * k, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 12 * k,
                    "tx-bytes": 1100 * k, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 11 * k}
        out = [{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
            {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
            {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}],
            "statistics": stats(3)}]
        if self.network:
            nic = {"name": "ens18", "hardware-address": self.mac(upper=False),
                   "ip-addresses": [], "statistics": stats(40)}
            if self.has_address(now):
                nic["ip-addresses"].append(
                    {"ip-address": self.ip, "ip-address-type": "ipv4", "prefix": 24})
            nic["ip-addresses"].append({"ip-address": self.ipv6_link_local(),
                                        "ip-address-type": "ipv6", "prefix": 64})
            out.append(nic)
        return out

    def config(self) -> dict:
        conf = {"name": self.name, "cores": self.cores, "sockets": 1, "memory": str(self.memory),
                "ostype": "l26", "scsihw": "virtio-scsi-single", "boot": "order=scsi0;net0",
                "scsi0": f"local-lvm:vm-{self.vmid}-disk-0,iothread=1,size={self.disk_size // GIB}G",
                "smbios1": f"uuid=5a1d{self.vmid:04x}-0c1e-4d2b-9a7f-2b1c3d4e5f60",
                "vmgenid": f"7c3e{self.vmid:04x}-1a2b-4c5d-8e9f-0a1b2c3d4e5f"}
        if self.network:
            conf["net0"] = f"virtio={self.mac()},bridge=vmbr0,firewall=1"
        if self.agent:
            conf["agent"] = "1"
        if self.tags:
            conf["tags"] = self.tags
        if self.lock:
            conf["lock"] = self.lock
        if self.template:
            conf["template"] = 1
        text = "\n".join(f"{k}: {v}" for k, v in sorted(conf.items()))
        conf["digest"] = hashlib.sha1(text.encode()).hexdigest()
        return conf

    def internal(self, now: float) -> dict:
        return {"vmid": self.vmid, "type": "qemu", "node": self.node, "name": self.name,
                "status": self.status, "qmpstatus": self.qmpstatus if self.status == "running"
                else "stopped", "hibernated": self.lock == "suspended" and self.status != "running",
                "template": self.template, "lock": self.lock, "tags": self.tags, "ha": self.ha,
                "ha_state": self.ha_state, "ignore_shutdown": self.ignore_shutdown,
                "fail_start": self.fail_start, "agent": self.agent,
                "agent_delay": self.agent_delay, "agent_up": self.agent_up(now),
                "pid": self.pid, "hang": self.hang, "network": self.network, "ip": self.ip,
                "ip_delay": self.ip_delay,
                "ready": self.ready(now), "uptime": self._usage(now)["uptime"]}

    def ready(self, now: float) -> bool:
        """What a correct bridge concludes: running, not paused, and an address reported by
        the agent (without an agent or a NIC there is nothing to wait for)."""
        return (self.status == "running" and self.qmpstatus == "running" and
                (not self.network or not self.agent or
                 (self.agent_up(now) and self.has_address(now))))

class Task:
    """A worker task. Fields change only under State.lock."""

    def __init__(self, node: Node, ttype: str, tid: str, user: str, seq: int):
        self.node, self.type, self.id, self.user = node.name, ttype, tid, user
        self.pid, self.pstart, self.starttime = node.new_pid(), node.pstart(), int(time.time())
        self.upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (
            self.node, self.pid, self.pstart, self.starttime, ttype, tid, user)
        self.seq = seq
        self.end_seq = 0
        self.status = "running"
        self.exitstatus: str | None = None
        self.endtime: int | None = None
        self.abort = threading.Event()
        self.crashed = False            # its node crashed: it ends "unexpected status"
        self.log: list[str] = []

    def sleep(self, seconds: float) -> None:
        """Wait like a worker does; a kill (abort) interrupts the wait."""
        if self.abort.wait(max(0.0, seconds)):
            raise TaskAborted()

    def describe(self) -> dict:
        """upid_decode + convert_token_task: `user` loses the token part, `tokenid` holds it."""
        d = {"upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
             "starttime": self.starttime, "type": self.type, "id": self.id, "user": self.user}
        if "!" in self.user:
            d["user"], d["tokenid"] = self.user.split("!", 1)
        return d

    def owned_by(self, auth: "Auth") -> bool:
        """$check_task_user: a token sees its own tasks, a user sees its own and its tokens'."""
        return auth.full in (self.user, self.user.split("!", 1)[0])


class Auth:
    def __init__(self, user: str, tokenid: str | None, privs: frozenset | None):
        self.user, self.tokenid, self.privs = user, tokenid, privs
        self.full = f"{user}!{tokenid}" if tokenid else user

    def has(self, priv) -> bool:
        """One privilege, or a tuple of which any will do (check_any)."""
        if self.privs is None:
            return True
        if isinstance(priv, str):
            return priv in self.privs
        return any(p in self.privs for p in priv)


# --------------------------------------------------------------------------- state

class State:
    """Everything the simulated cluster knows. One lock guards all of it."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lock = threading.RLock()
        self.nodes = {name: Node(name, i) for i, name in enumerate(args.nodes)}
        self.guests: dict[int, Guest] = {}     # CTs and VMs by vmid (unique in a cluster)
        self.conf_locks: dict[int, threading.Lock] = {}
        self.tasks: dict[str, Task] = {}
        self.node_tasks: dict[str, list[Task]] = {n: [] for n in self.nodes}
        self.seq = 0
        self.end_seq = 0
        self.tokens: dict[str, tuple[str, frozenset | None]] = {}
        for tok in args.token or [DEFAULT_TOKEN]:
            tokenid, secret = parse_token(tok)
            self.tokens[tokenid] = (secret, None)
        self.users = {args.user: args.password}
        self.tickets: dict[str, tuple[str, float]] = {}
        self.expired_tickets: set[str] = set()
        self.csrf: dict[str, str] = {}
        self.stats: collections.Counter = collections.Counter()
        self.slow = 0.0
        self.fail_status, self.fail_count = 0, 0
        # pvestatd/pmxcfs: vmid -> (time pvestatd saw it, what it saw). The id list
        # (vmlist) is live; these stats are as old as the last update of the guest's node.
        self.rrd: dict[int, tuple[float, dict]] = {}
        self.stats_expire = (args.stats_expire if args.stats_expire is not None else
                             (RRD_EXPIRE_SECONDS if args.resources_lag > 0 else 0.0))
        self.started = time.time()
        self._populate(args)
        for g in self.guests.values():
            self.rrd[g.vmid] = (self.started, g.rrd(self.started))
        if args.resources_lag > 0:
            threading.Thread(target=self._pvestatd, name="pvestatd", daemon=True).start()

    def _populate(self, args) -> None:
        names = list(self.nodes)
        now = time.time()

        def run(g: Guest) -> None:
            node = self.nodes[g.node]
            g.status, g.pid = "running", node.new_pid()
            g.started_at = g.booted_at = now - 600 - (g.vmid * 7919) % 86400

        for i in range(args.cts):
            vmid = args.first_vmid + i
            ct = CT(vmid, names[i % len(names)], f"ct{vmid}")
            ct.ip_delay = args.ip_delay
            stopped = int((i + 1) * args.stopped_fraction) > int(i * args.stopped_fraction)
            if not stopped:
                run(ct)
            self.guests[vmid] = ct
        first_vm = args.first_vm_vmid if args.first_vm_vmid is not None else \
            args.first_vmid + args.cts
        # VMs in vmid order: the paused ones, then the stopped ones, then the templates,
        # then running ones; the last --vms-without-agent of them have no guest agent.
        paused, stopped = args.vms_paused, args.vms_paused + args.vms_stopped
        templates = stopped + args.vm_templates
        for i in range(args.vms):
            vmid = first_vm + i
            if vmid in self.guests:
                raise SystemExit(f"pve-simulator: VM vmid {vmid} collides with a CT "
                                 "(use --first-vm-vmid)")
            vm = VM(vmid, names[i % len(names)], f"vm{vmid}")
            vm.ip_delay, vm.agent_delay = args.ip_delay, args.agent_delay
            vm.agent = i < args.vms - args.vms_without_agent
            if i < paused:
                run(vm)
                vm.qmpstatus = "paused"
            elif i < stopped:
                pass
            elif i < templates:
                vm.template = True
            else:
                run(vm)
            self.guests[vmid] = vm

    # -- small helpers (call with the lock held)
    @property
    def cts(self) -> dict:
        return {v: g for v, g in self.guests.items() if isinstance(g, CT)}

    def local_ct(self, node: str, vmid: int) -> CT | None:
        g = self.guests.get(vmid)
        return g if isinstance(g, CT) and g.node == node else None

    def local_vm(self, node: str, vmid: int) -> VM | None:
        g = self.guests.get(vmid)
        return g if isinstance(g, VM) and g.node == node else None

    def local(self, node: str, vmid: int, kind: str) -> Guest | None:
        return self.local_vm(node, vmid) if kind == "qemu" else self.local_ct(node, vmid)

    def set_running(self, g: Guest, boot: bool = True) -> None:
        """The guest's process starts (a new pid); `boot`: its OS boots (readiness restarts)."""
        now = time.time()
        g.status, g.pid, g.started_at = "running", self.nodes[g.node].new_pid(), now
        if boot:
            g.booted_at = now
        if isinstance(g, CT):
            g.suspended = False
        else:
            g.qmpstatus = "running"
            if g.lock == "suspended":     # resumed from hibernation
                g.lock = None

    @staticmethod
    def set_stopped(g: Guest) -> None:
        g.status, g.pid = "stopped", None

    def count(self, template: str) -> None:
        with self.lock:
            self.stats[template] += 1

    def take_failure(self) -> int:
        with self.lock:
            if self.fail_count > 0:
                self.fail_count -= 1
                return self.fail_status
            return 0

    # ------------------------------------------------------------------ auth

    def issue_ticket(self, user: str) -> tuple[str, str]:
        now = time.time()
        sig = base64.b64encode(secrets.token_bytes(256)).decode()
        ticket = f"PVE:{user}:{int(now):08X}::{sig}"
        csrf = f"{int(now):08X}:" + base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        with self.lock:
            self.tickets[ticket] = (user, now)
            self.csrf[csrf] = user
        return ticket, csrf

    def ticket_user(self, ticket: str) -> str | None:
        with self.lock:
            entry = self.tickets.get(ticket)
            if entry is None or ticket in self.expired_tickets:
                return None
            user, issued = entry
            if time.time() - issued > self.args.ticket_lifetime:
                return None
            return user

    def authenticate(self, headers, method: str) -> Auth:
        """pve-http-server's auth_handler: cookie ticket (+ CSRF on non-GET) or API token."""
        m = re.search(r"(?:^|[;,\s])PVEAuthCookie=([^;,\s]*)", headers.get("Cookie", ""))
        ticket = unquote(m.group(1)) if m else ""
        if ticket:
            user = self.ticket_user(ticket)
            if user is None:
                raise ApiError(401, "Authentication failed!")
            if method != "GET":
                token = headers.get("CSRFPreventionToken", "")
                with self.lock:
                    ok = self.csrf.get(token) == user
                if not ok:
                    raise ApiError(401, "Permission denied - invalid csrf token")
            return Auth(user, None, None)
        header = headers.get("Authorization", "")
        if header.startswith("PVEAPIToken="):
            cred = header[len("PVEAPIToken="):].strip()
            tokenid, sep, secret = cred.rpartition("=")
            with self.lock:
                entry = self.tokens.get(tokenid) if sep else None
            if entry is None or not hmac.compare_digest(entry[0].encode(), secret.encode()):
                raise ApiError(401, "Authentication failed!")
            user, tid = tokenid.split("!", 1)
            return Auth(user, tid, entry[1])
        raise ApiError(401, "No ticket")

    # ------------------------------------------------------------------ tasks

    def _new_task(self, node: str, ttype: str, vmid, user: str) -> Task:
        with self.lock:
            self.seq += 1
            task = Task(self.nodes[node], ttype, "" if vmid is None else str(vmid), user,
                        self.seq)
            self.tasks[task.upid] = task
            history = self.node_tasks[node]
            history.append(task)
            if len(history) > MAX_TASKS_PER_NODE + 500:
                keep, drop = [], len(history) - MAX_TASKS_PER_NODE
                for t in history:
                    if drop > 0 and t.status == "stopped":
                        self.tasks.pop(t.upid, None)
                        drop -= 1
                    else:
                        keep.append(t)
                self.node_tasks[node] = keep
            return task

    def _finish(self, task: Task, exitstatus: str) -> None:
        with self.lock:
            self.end_seq += 1
            task.end_seq = self.end_seq
            if task.crashed:            # the worker died with its node: no end line in the log
                exitstatus = "unexpected status"
            task.exitstatus, task.endtime, task.status = exitstatus, int(time.time()), "stopped"
            if task.crashed:
                pass
            elif exitstatus == "OK":
                task.log.append("TASK OK")
            elif exitstatus.startswith("WARNINGS: "):
                task.log.append("TASK " + exitstatus)
            else:
                task.log.append("TASK ERROR: " + exitstatus)

    def start_task(self, node: str, ttype: str, vmid, user: str, body) -> Task:
        """fork_worker: register the task now, run `body(task)` in a thread.

        `body` changes the CT (under the lock) before it returns, so the task reads
        `stopped` only after the CT status is final.
        """
        task = self._new_task(node, ttype, vmid, user)

        def run():
            try:
                status = body(task) or "OK"
            except TaskAborted:
                status = "received interrupt"
            except TaskFailed as e:
                status = str(e)
            except Exception as e:  # a simulator bug must still end the task
                status = f"simulator internal error: {e!r}"
            self._finish(task, status)

        threading.Thread(target=run, name=f"task-{ttype}-{vmid}", daemon=True).start()
        return task

    def record_task(self, node: str, ttype: str, vmid, user: str = "root@pam",
                    exitstatus: str = "OK") -> Task:
        """A task that already ran (pct create, pct destroy, ...)."""
        task = self._new_task(node, ttype, vmid, user)
        self._finish(task, exitstatus)
        return task

    # ------------------------------------------------------------------ lifecycle

    def lifecycle(self, node: str, vmid: int, action: str, p: dict, user: str) -> Task:
        """Synchronous part of POST /nodes/{node}/lxc/{vmid}/status/{action} (Status.pm)."""
        if p.get("skiplock") and user != "root@pam":
            raise param_error({"skiplock": "Only root may use this option."})
        with self.lock:
            ct = self.guests.get(vmid)
            running = isinstance(ct, CT) and ct.node == node and ct.status == "running"
            ha = isinstance(ct, CT) and ct.ha
        if action == "start":
            if running:
                raise handler_error(f"CT {vmid} already running")
            if ha:
                return self.start_task(node, "hastart", vmid, user,
                                       lambda t: self._w_ha(t, vmid, "start", p))
            return self.start_task(node, "vzstart", vmid, user,
                                   lambda t: self._w_start(t, node, vmid, p.get("skiplock")))
        if action == "stop":
            if not running:
                raise handler_error(f"CT {vmid} not running")
            if ha:
                if p.get("overrule-shutdown"):
                    raise param_error({"overrule-shutdown": "Not applicable for HA resources."})
                return self.start_task(node, "hastop", vmid, user,
                                       lambda t: self._w_ha(t, vmid, "stop", p))
            return self.start_task(node, "vzstop", vmid, user, lambda t: self._w_stop(
                t, node, vmid, p.get("overrule-shutdown"), p.get("skiplock")))
        if action == "shutdown":
            if not running:
                raise handler_error(f"CT {vmid} not running")
            timeout = p.get("timeout", 60)
            if ha:
                return self.start_task(node, "hastop", vmid, user,
                                       lambda t: self._w_ha(t, vmid, "shutdown", p))
            return self.start_task(node, "vzshutdown", vmid, user, lambda t: self._w_shutdown(
                t, node, vmid, timeout, bool(p.get("forceStop"))))
        if action == "reboot":
            if not running:
                raise handler_error(f"VM {vmid} not running")
            return self.start_task(node, "vzreboot", vmid, user,
                                   lambda t: self._w_reboot(t, node, vmid, p.get("timeout")))
        if action == "suspend":
            if not running:
                raise handler_error(f"CT {vmid} not running")
            return self.start_task(node, "vzsuspend", vmid, user,
                                   lambda t: self._w_suspend(t, node, vmid))
        if action == "resume":
            if running:
                raise handler_error(f"CT {vmid} already running")
            return self.start_task(node, "vzresume", vmid, user,
                                   lambda t: self._w_resume(t, node, vmid))
        raise ValueError(action)

    # -- workers. Each runs in its task's thread.

    def _conf_lock(self, vmid: int, kind: str = "lxc") -> threading.Lock:
        """lock_config: flock on the guest's lock file, 10 s timeout."""
        with self.lock:
            lk = self.conf_locks.setdefault(vmid, threading.Lock())
        if not lk.acquire(timeout=self.args.lock_timeout):
            path = (f"/var/lock/qemu-server/lock-{vmid}.conf" if kind == "qemu" else
                    f"/run/lock/lxc/pve-config-{vmid}.conf")
            raise TaskFailed(f"can't lock file '{path}' - got timeout")
        return lk

    def _load(self, node: str, vmid: int, kind: str = "lxc") -> Guest:
        g = self.local(node, vmid, kind)
        if g is None:
            raise TaskFailed(missing_conf(node, vmid, kind))
        return g

    def _work(self, task: Task, vmid: int, seconds: float | None = None) -> None:
        """The worker does its job: `--task-seconds`, and forever while the guest `hang`s."""
        task.sleep(self.args.task_seconds if seconds is None else seconds)
        while True:
            with self.lock:
                g = self.guests.get(vmid)
                if g is None or not g.hang:
                    return
            task.sleep(0.05)

    def _w_start(self, task: Task, node: str, vmid: int, skiplock=False) -> str:
        lk = self._conf_lock(vmid)
        try:
            with self.lock:
                ct = self._load(node, vmid)
                if ct.template:
                    raise TaskFailed("you can't start a CT if it's a template")
                if ct.lock and ct.lock != "mounted" and not skiplock:
                    raise TaskFailed(f"CT is locked ({ct.lock})")
            self._work(task, vmid)
            with self.lock:
                ct = self._load(node, vmid)
                if ct.status == "running":
                    raise TaskFailed(f"CT {vmid} already running")
                if ct.fail_start:
                    task.log.append("run_buffer: 571 Script exited with status 1")
                    raise TaskFailed(f"startup for container '{vmid}' failed")
                self.set_running(ct)
            return "OK"
        finally:
            lk.release()

    def _w_stop(self, task: Task, node: str, vmid: int, overrule=False, skiplock=False) -> str:
        if overrule:
            with self.lock:
                victims = [t for t in self.node_tasks[node] if t.status == "running"
                           and t.type == "vzshutdown" and t.id == str(vmid)]
            for t in victims:
                t.abort.set()
            if victims:
                task.log.append("overruled vzshutdown tasks: " + ", ".join(t.upid for t in victims))
        lk = self._conf_lock(vmid)
        try:
            with self.lock:
                ct = self._load(node, vmid)
                if ct.lock and ct.lock != "mounted" and not skiplock:
                    raise TaskFailed(f"CT is locked ({ct.lock})")
            self._work(task, vmid)
            with self.lock:
                ct = self._load(node, vmid)
                if ct.status != "running":
                    task.log.append("failed to open container's command socket: Connection refused")
                    return "WARNINGS: 1"
                self.set_stopped(ct)
            return "OK"
        finally:
            lk.release()

    def _wait_for_inside_shutdown(self, task: Task, node: str, vmid: int, timeout: float,
                                  kind: str = "lxc") -> bool:
        """A guest that ignores the shutdown request: wait up to `timeout` seconds of real time.

        Returns True if the guest went down meanwhile (from inside, or the flag was cleared).
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            task.sleep(min(0.05, remaining))
            with self.lock:
                ct = self._load(node, vmid, kind)
                if ct.status != "running":
                    return True
                if not ct.ignore_shutdown:
                    break
        self._work(task, vmid)
        with self.lock:
            self.set_stopped(self._load(node, vmid, kind))
        return True

    def _w_shutdown(self, task: Task, node: str, vmid: int, timeout: int, force: bool) -> str:
        lk = self._conf_lock(vmid)
        try:
            with self.lock:
                ct = self._load(node, vmid)
                if ct.lock:
                    raise TaskFailed(f"CT is locked ({ct.lock})")
                if ct.status != "running":
                    task.log.append("failed to open container's command socket: Connection refused")
                    return "WARNINGS: 1"
                ignoring = ct.ignore_shutdown
            if not ignoring:
                self._work(task, vmid)
                with self.lock:
                    self.set_stopped(self._load(node, vmid))
                return "OK"
            if self._wait_for_inside_shutdown(task, node, vmid, timeout):
                return "OK"
            with self.lock:
                ct = self._load(node, vmid)
                if not force:
                    raise TaskFailed("container did not stop")
                task.log.append("container did not stop in time, killing it")
                self.set_stopped(ct)
            return "OK"
        finally:
            lk.release()

    def _w_reboot(self, task: Task, node: str, vmid: int, timeout) -> str:
        lk = self._conf_lock(vmid)
        try:
            with self.lock:
                ct = self._load(node, vmid)
                if ct.lock:
                    raise TaskFailed(f"CT is locked ({ct.lock})")
                if ct.status != "running":
                    return "OK"    # vm_reboot: `return if !check_running($vmid)`
                ignoring = ct.ignore_shutdown
            half = self.args.task_seconds / 2
            if ignoring:
                if not self._wait_for_inside_shutdown(task, node, vmid,
                                                      60 if timeout is None else timeout):
                    with self.lock:
                        self.set_stopped(self._load(node, vmid))
            else:
                self._work(task, vmid, half)
                with self.lock:
                    self.set_stopped(self._load(node, vmid))
            task.sleep(half)
            with self.lock:
                ct = self._load(node, vmid)
                if ct.fail_start:
                    raise TaskFailed(f"startup for container '{vmid}' failed")
                if ct.status != "running":
                    self.set_running(ct)
            return "OK"
        finally:
            lk.release()

    def _w_suspend(self, task: Task, node: str, vmid: int) -> str:
        lk = self._conf_lock(vmid)
        try:
            with self.lock:
                ct = self._load(node, vmid)
                if ct.lock:
                    raise TaskFailed(f"CT is locked ({ct.lock})")
            self._work(task, vmid)
            with self.lock:
                ct = self._load(node, vmid)
                if ct.fail_suspend or ct.status != "running":
                    raise TaskFailed(f"command 'lxc-checkpoint -n {vmid} -s -D /var/lib/vz/dump' "
                                     "failed: exit code 1")
                self.set_stopped(ct)
                ct.suspended = True
            return "OK"
        finally:
            lk.release()

    def _w_resume(self, task: Task, node: str, vmid: int) -> str:
        # vm_resume takes no config lock: it just runs lxc-checkpoint -r.
        self._work(task, vmid)
        with self.lock:
            ct = self.local_ct(node, vmid)
            if ct is None or not ct.suspended or ct.status == "running":
                raise TaskFailed(f"command 'lxc-checkpoint -n {vmid} -r --foreground -D "
                                 "/var/lib/vz/dump' failed: exit code 1")
            self.set_running(ct)
        return "OK"

    def _w_ha(self, task: Task, vmid: int, action: str, p: dict) -> str:
        """hastart/hastop: hand the request to the HA stack and end at once.

        The HA local resource manager later runs the real start/stop/shutdown task
        (as root@pam), so the status changes after this task has ended. A shutdown
        with `timeout` 0 becomes a hard stop, as PVE::HA::Resources::PVEVM/PVECT do.
        """
        with self.lock:
            g = self.guests.get(vmid)
            kind = g.TYPE if g is not None else "lxc"
        what = "VM" if kind == "qemu" else "CT"
        sid = f"{'vm' if kind == 'qemu' else 'ct'}:{vmid}"
        verb = "start" if action == "start" else "stop"
        task.log.append(f"Requesting HA {verb} for {what} {vmid}")
        task.sleep(HA_TASK_SECONDS)
        with self.lock:
            g = self.guests.get(vmid)
            if g is None or not g.ha:
                raise TaskFailed(f"service '{sid}' not configured")
            g.ha_state = "started" if action == "start" else "stopped"
            node = g.node
        timeout = p.get("timeout", 60)
        if action == "shutdown" and timeout == 0:
            action = "stop"

        def lrm():
            with self.lock:
                g = self.guests.get(vmid)
                if g is None or g.node != node or not self.nodes[node].online:
                    return
                running = g.status == "running"
            if kind == "qemu":
                if action == "start" and not running:
                    self.start_task(node, "qmstart", vmid, "root@pam",
                                    lambda t: self._w_qm_start(t, node, vmid))
                elif action in ("stop", "shutdown") and running:
                    shutdown = action == "shutdown"
                    self.start_task(node, "qmshutdown" if shutdown else "qmstop", vmid,
                                    "root@pam", lambda t: self._w_qm_stop(
                                        t, node, vmid, shutdown, timeout if shutdown else None,
                                        True))
                return
            if action == "start" and not running:
                self.start_task(node, "vzstart", vmid, "root@pam",
                                lambda t: self._w_start(t, node, vmid))
            elif action == "stop" and running:
                self.start_task(node, "vzstop", vmid, "root@pam",
                                lambda t: self._w_stop(t, node, vmid))
            elif action == "shutdown" and running:
                self.start_task(node, "vzshutdown", vmid, "root@pam",
                                lambda t: self._w_shutdown(t, node, vmid, timeout, True))

        self._later(HA_PICKUP_SECONDS, lrm)
        return "OK"

    @staticmethod
    def _later(seconds: float, fn) -> None:
        timer = threading.Timer(seconds, fn)
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------------ QEMU lifecycle

    ROOT_ONLY = {
        "start": ("skiplock", "stateuri", "migratedfrom", "migration_type", "migration_network",
                  "targetstorage", "force-cpu", "with-conntrack-state", "nets-host-mtu"),
        "stop": ("skiplock", "keepActive", "migratedfrom"),
        "shutdown": ("skiplock", "keepActive"),
        "suspend": ("skiplock",),
        "resume": ("skiplock", "nocheck"),
        "reset": ("skiplock",),
    }

    def qm_lifecycle(self, node: str, vmid: int, action: str, p: dict, user: str) -> Task:
        """Synchronous part of POST /nodes/{node}/qemu/{vmid}/status/{action} (API2/Qemu.pm)."""
        for key in self.ROOT_ONLY.get(action, ()):
            if p.get(key) and user != "root@pam":
                raise param_error({key: "Only root may use this option."})
        with self.lock:
            g = self.guests.get(vmid)
            ha = isinstance(g, VM) and g.ha
            vm = self.local_vm(node, vmid)
            running = vm is not None and vm.status == "running"
            # vm_is_paused($vmid, 1): paused, prelaunch, and suspended (guest S3)
            paused = running and vm.qmpstatus in ("paused", "prelaunch", "suspended")
            hibernated = vm is not None and not running and vm.lock == "suspended"

        def check_running():
            if vm is None:
                raise handler_error(vm_not_found(node, vmid))
            if not running:
                raise handler_error(f"VM {vmid} not running")

        def ha_task(ttype, act):
            return self.start_task(node, ttype, vmid, user, lambda t: self._w_ha(t, vmid, act, p))

        skiplock = bool(p.get("skiplock"))
        if action == "start":
            if ha and not p.get("stateuri"):
                return ha_task("hastart", "start")
            return self.start_task(node, "qmstart", vmid, user,
                                   lambda t: self._w_qm_start(t, node, vmid, skiplock))
        if action == "stop":
            if ha and not p.get("migratedfrom"):
                if p.get("overrule-shutdown"):
                    raise param_error({"overrule-shutdown": "Not applicable for HA resources."})
                return ha_task("hastop", "stop")
            return self.start_task(node, "qmstop", vmid, user, lambda t: self._w_qm_stop(
                t, node, vmid, False, p.get("timeout"), True, skiplock,
                bool(p.get("overrule-shutdown"))))
        if action == "shutdown":
            shutdown = True
            if paused:
                if not p.get("forceStop"):
                    raise handler_error("VM is paused - cannot shutdown")
                shutdown = False    # "VM is paused - stop instead of shutdown" (a warning)
            if ha:
                return ha_task("hastop", "shutdown")
            return self.start_task(node, "qmshutdown", vmid, user, lambda t: self._w_qm_stop(
                t, node, vmid, shutdown, p.get("timeout"), bool(p.get("forceStop")), skiplock))
        if action == "reboot":
            if paused:
                raise handler_error("VM is paused - cannot shutdown")
            check_running()
            return self.start_task(node, "qmreboot", vmid, user,
                                   lambda t: self._w_qm_reboot(t, node, vmid, p.get("timeout")))
        if action == "suspend":
            check_running()
            todisk = bool(p.get("todisk"))
            if todisk and ha:
                raise handler_error("Cannot suspend HA managed VM to disk")
            return self.start_task(node, "qmsuspend" if todisk else "qmpause", vmid, user,
                                   lambda t: self._w_qm_suspend(t, node, vmid, todisk, skiplock))
        if action == "resume":
            if not hibernated:
                if p.get("nocheck"):
                    if not running:
                        raise handler_error(f"VM {vmid} not running")
                else:
                    check_running()
            return self.start_task(node, "qmresume", vmid, user,
                                   lambda t: self._w_qm_resume(t, node, vmid, hibernated,
                                                               skiplock))
        if action == "reset":
            check_running()
            return self.start_task(node, "qmreset", vmid, user,
                                   lambda t: self._w_qm_reset(t, node, vmid, skiplock))
        raise ValueError(action)

    def _qm_running(self, node: str, vmid: int) -> VM | None:
        """check_running inside a worker: dies if the config is not here, None if stopped."""
        vm = self.local_vm(node, vmid)
        if vm is None:
            raise TaskFailed(vm_not_found(node, vmid))
        return vm if vm.status == "running" else None

    def _w_qm_start(self, task: Task, node: str, vmid: int, skiplock=False) -> str:
        lk = self._conf_lock(vmid, "qemu")
        try:
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if vm.template:
                    raise TaskFailed("you can't start a vm if it's a template")
                running = vm.status == "running"
                if vm.lock == "backup" and running:
                    # a backup runs: vm_start resumes the guest in the existing QEMU
                    vm.qmpstatus = "running"
                    return "OK"
                if vm.lock and vm.lock != "suspended" and not skiplock:
                    raise TaskFailed(f"VM is locked ({vm.lock})")
                if running:
                    raise TaskFailed(f"VM {vmid} already running")
                if vm.lock == "suspended":
                    task.log.append("Resuming suspended VM")
            self._work(task, vmid)
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if vm.status == "running":
                    raise TaskFailed(f"VM {vmid} already running")
                if vm.fail_start:
                    task.log.append(f"kvm: -drive file=/dev/pve/vm-{vmid}-disk-0: Could not open "
                                    "'/dev/pve/vm-{vmid}-disk-0': No such file or directory")
                    raise TaskFailed("start failed: QEMU exited with code 1")
                self.set_running(vm)
            return "OK"
        finally:
            lk.release()

    def _w_qm_stop(self, task: Task, node: str, vmid: int, shutdown: bool, timeout,
                   force: bool, skiplock=False, overrule=False) -> str:
        """vm_stop/_do_vm_stop: `quit` (stop) or ACPI/agent powerdown (shutdown)."""
        if overrule:
            with self.lock:
                victims = [t for t in self.node_tasks[node] if t.status == "running"
                           and t.type == "qmshutdown" and t.id == str(vmid)]
            for t in victims:
                t.abort.set()
            if victims:
                task.log.append("overruled qmshutdown tasks: " + ", ".join(t.upid for t in victims))
        lk = self._conf_lock(vmid, "qemu")
        try:
            with self.lock:
                vm = self._qm_running(node, vmid)
                if vm is None:
                    return "OK"        # `return if !$pid`: already stopped is success
                if vm.lock and not skiplock:
                    raise TaskFailed(f"VM is locked ({vm.lock})")
                ignoring = shutdown and (vm.ignore_shutdown or vm.qmpstatus != "running")
            if not ignoring:
                self._work(task, vmid)
                with self.lock:
                    self.set_stopped(self._load(node, vmid, "qemu"))
                return "OK"
            if self._wait_for_inside_shutdown(task, node, vmid, 60 if timeout is None else timeout,
                                              "qemu"):
                return "OK"
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if not force:
                    raise TaskFailed("VM quit/powerdown failed - got timeout")
                task.log.append("VM still running - terminating now with SIGTERM")
                self.set_stopped(vm)
            return "OK"
        finally:
            lk.release()

    def _w_qm_reboot(self, task: Task, node: str, vmid: int, timeout) -> str:
        """vm_reboot: a shutdown with a reboot request; qmeventd then runs `qm start`."""
        lk = self._conf_lock(vmid, "qemu")
        try:
            with self.lock:
                vm = self._qm_running(node, vmid)
                if vm is None:
                    return "OK"
                if vm.lock:
                    raise TaskFailed(f"VM is locked ({vm.lock})")
                ignoring = vm.ignore_shutdown or vm.qmpstatus != "running"
            if ignoring:
                if not self._wait_for_inside_shutdown(task, node, vmid,
                                                      60 if timeout is None else timeout, "qemu"):
                    raise TaskFailed("VM quit/powerdown failed - got timeout")
            else:
                self._work(task, vmid)
                with self.lock:
                    self.set_stopped(self._load(node, vmid, "qemu"))
        finally:
            lk.release()

        def qmeventd():
            with self.lock:
                vm = self.local_vm(node, vmid)
                if vm is None or vm.status == "running" or not self.nodes[node].online:
                    return
            self.start_task(node, "qmstart", vmid, "root@pam",
                            lambda t: self._w_qm_start(t, node, vmid))

        self._later(QMEVENTD_SECONDS, qmeventd)
        return "OK"

    def _w_qm_suspend(self, task: Task, node: str, vmid: int, todisk: bool, skiplock) -> str:
        lk = self._conf_lock(vmid, "qemu")
        try:
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                backing_up = vm.lock == "backup"
                if vm.lock and not (skiplock or backing_up):
                    raise TaskFailed(f"VM is locked ({vm.lock})")
                if backing_up and todisk:
                    raise TaskFailed("cannot suspend to disk during backup")
                if vm.status != "running":
                    raise TaskFailed(f"VM {vmid} qmp command 'stop' failed - unable to connect "
                                     f"to VM {vmid} qmp socket - No such file or directory")
                if todisk:
                    vm.lock = "suspending"
            try:
                self._work(task, vmid)
            except TaskAborted:
                with self.lock:
                    if todisk and vm.lock == "suspending":
                        vm.lock = None
                raise
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if todisk:
                    self.set_stopped(vm)
                    vm.lock = "suspended"
                else:
                    vm.qmpstatus = "paused"
            return "OK"
        finally:
            lk.release()

    def _w_qm_resume(self, task: Task, node: str, vmid: int, hibernated: bool, skiplock) -> str:
        if hibernated:      # resume of a hibernated VM is a start from its saved state
            return self._w_qm_start(task, node, vmid, skiplock)
        lk = self._conf_lock(vmid, "qemu")
        try:
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if vm.template:
                    raise TaskFailed(f"VM {vmid} is a template and cannot be resumed!")
                if vm.status != "running":
                    raise TaskFailed(f"VM {vmid} qmp command 'query-status' failed - unable to "
                                     f"connect to VM {vmid} qmp socket - No such file or directory")
                if vm.qmpstatus == "running":
                    return "OK"        # "job done, go home"
                if vm.lock and not (skiplock or vm.lock == "backup"):
                    raise TaskFailed(f"VM is locked ({vm.lock})")
            self._work(task, vmid)
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if vm.status == "running":
                    vm.qmpstatus = "running"
            return "OK"
        finally:
            lk.release()

    def _w_qm_reset(self, task: Task, node: str, vmid: int, skiplock) -> str:
        lk = self._conf_lock(vmid, "qemu")
        try:
            with self.lock:
                vm = self._qm_running(node, vmid)
                if vm is None:
                    raise TaskFailed(f"VM {vmid} not running")
                if vm.lock and not skiplock:
                    raise TaskFailed(f"VM is locked ({vm.lock})")
            self._work(task, vmid, self.args.task_seconds / 5)
            with self.lock:
                vm = self._load(node, vmid, "qemu")
                if vm.status == "running":
                    vm.booted_at = time.time()     # same QEMU process, the guest reboots
            return "OK"
        finally:
            lk.release()

    # ------------------------------------------------------------------ migration

    def migrate(self, vmid: int, target: str, instant: bool, user: str = "root@pam") -> Task:
        """`pct migrate --restart` / `qm migrate --online` as a vzmigrate/qmigrate task on the
        source node. The guest carries `lock: migrate` meanwhile; at the end its config is
        on the target (the old node no longer knows it) and it runs there if it ran before."""
        with self.lock:
            g = self.guests[vmid]
            source, kind = g.node, g.TYPE
        ttype = "qmigrate" if kind == "qemu" else "vzmigrate"
        if instant:
            with self.lock:
                self._move(g, target)
                return self.record_task(source, ttype, vmid, user)
        return self.start_task(source, ttype, vmid, user,
                               lambda t: self._w_migrate(t, source, vmid, kind, target))

    def _move(self, g: Guest, target: str) -> None:
        running = g.status == "running"
        g.node, g.lock = target, None
        if running:
            # CT: restart mode (it boots again on the target); VM: live migration
            self.set_running(g, boot=isinstance(g, CT))

    def _w_migrate(self, task: Task, source: str, vmid: int, kind: str, target: str) -> str:
        what = "VM" if kind == "qemu" else "CT"
        lk = self._conf_lock(vmid, kind)
        try:
            with self.lock:
                g = self._load(source, vmid, kind)
                if g.lock:
                    raise TaskFailed(f"{what} is locked ({g.lock})")
                g.lock = "migrate"
                was_running = g.status == "running"
                if kind == "lxc" and was_running:
                    task.log.append(f"shutdown CT {vmid}")
                    self.set_stopped(g)
        finally:
            lk.release()
        task.log.append(f"starting migration of {what} {vmid} to node '{target}' "
                        f"({self.nodes[target].ip})")
        try:
            self._work(task, vmid)
        except TaskAborted:
            with self.lock:
                g.lock = None
            raise
        with self.lock:
            g = self._load(source, vmid, kind)
            g.status = "running" if was_running else g.status
            self._move(g, target)
            if kind == "lxc" and was_running:
                task.log.append("start container on target node")
        task.log.append("migration finished successfully")
        return "OK"

    # ------------------------------------------------------------------ cluster views

    def publish(self, node: str, now: float) -> None:
        """pvestatd on `node` broadcasts its guests' status (call with the lock held)."""
        for g in self.guests.values():
            if g.node == node:
                self.rrd[g.vmid] = (now, g.rrd(now))

    def _pvestatd(self) -> None:
        """Every node's pvestatd runs every --resources-lag seconds, staggered over the nodes."""
        lag = self.args.resources_lag
        names = list(self.nodes)
        due = {name: self.started + lag * (1 + i / len(names)) for i, name in enumerate(names)}
        while True:
            name = min(due, key=due.get)
            delay = due[name] - time.time()
            if delay > 0:
                time.sleep(delay)
            with self.lock:
                if self.nodes[name].online:
                    self.publish(name, time.time())
            due[name] += lag

    def guest_stats(self, g: Guest, now: float) -> dict | None:
        """extract_vm_stats' data for one guest: live, or the last broadcast if not expired."""
        if self.args.resources_lag <= 0 and self.nodes[g.node].online:
            return g.rrd(now)
        entry = self.rrd.get(g.vmid)
        if entry is None or now - entry[0] > self.stats_expire or \
                (self.stats_expire <= 0 and not self.nodes[g.node].online):
            return None
        return entry[1]

    def node_tasklist(self, node: str) -> list[dict]:
        """What the node broadcasts as its task list (RESTEnvironment::active_workers): the
        running tasks, then the most recent finished ones (by start time) up to 25 in all."""
        history = self.node_tasks[node]
        running = [t for t in history if t.status == "running"]
        finished = sorted((t for t in history if t.status == "stopped"),
                          key=lambda t: (t.starttime, t.seq), reverse=True)
        out = []
        for t in running:
            d = t.describe()
            del d["pstart"]
            d["saved"] = "0"
            out.append(d)
        for t in finished[:max(0, CLUSTER_TASKS_PER_NODE - len(running))]:
            d = t.describe()
            del d["pstart"], d["pid"]
            d.update({"saved": "1", "endtime": t.endtime, "status": t.exitstatus})
            out.append(d)
        return out

    def set_node_online(self, name: str, online: bool, crash: bool = False) -> None:
        """Call with the lock held."""
        node = self.nodes[name]
        now = time.time()
        if not online and node.online:
            if self.args.resources_lag <= 0:
                self.publish(name, now)      # what the others last heard from it
            node.frozen_tasks = self.node_tasklist(name)
            if crash:
                for t in self.node_tasks[name]:
                    if t.status == "running":
                        t.crashed = True
                        t.abort.set()
                for g in self.guests.values():
                    if g.node == name and g.status == "running":
                        self.set_stopped(g)
                        if isinstance(g, VM):
                            g.qmpstatus = "running"
                node.crashed = True
        elif online and not node.online:
            node.frozen_tasks = None
            if node.crashed:
                node.boot = now          # it rebooted: fresh uptime and pstart values
                node.crashed = False
        node.online = online

def parse_token(text: str) -> tuple[str, str]:
    """`USER@REALM!TOKENID=SECRET` → (tokenid, secret), split at the last `=`."""
    tokenid, sep, secret = text.rpartition("=")
    if not sep or not secret or not TOKEN_RE.match(tokenid):
        raise ValueError(f"bad token {text!r}: expected USER@REALM!TOKENID=SECRET")
    return tokenid, secret


# --------------------------------------------------------------------------- parameters

NODE = {"type": "string"}
VMID = {"type": "integer", "minimum": 100, "maximum": 999_999_999}
BOOL = {"type": "boolean", "optional": True}


def opt(spec: dict, **extra) -> dict:
    return {**spec, "optional": True, **extra}


def _shown(value) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    return value if isinstance(value, str) else json.dumps(value)


def check_value(value, spec: dict):
    """PVE::JSONSchema::check_type for the few types this API uses."""
    kind = spec["type"]
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if (isinstance(value, int) and value in (0, 1)) or value in ("0", "1"):
            return int(value) == 1
        raise ValueError(f"type check ('boolean') failed - got '{_shown(value)}'")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        elif isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            n = int(value)
        else:
            raise ValueError(f"type check ('integer') failed - got '{_shown(value)}'")
        if "minimum" in spec and n < spec["minimum"]:
            raise ValueError(f"value must have a minimum value of {spec['minimum']}")
        if "maximum" in spec and n > spec["maximum"]:
            raise ValueError(f"value must have a maximum value of {spec['maximum']}")
        return n
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        raise ValueError(f"type check ('string') failed - got '{_shown(value)}'")
    s = value if isinstance(value, str) else json.dumps(value)
    if "enum" in spec and s not in spec["enum"]:
        raise ValueError(f"value '{s}' does not have a value in the enumeration "
                         f"'{', '.join(spec['enum'])}'")
    return s


def validate(params: dict, schema: dict) -> dict:
    errors, out = {}, {}
    for name, value in params.items():
        spec = schema.get(name)
        if spec is None:
            errors[name] = NOT_IN_SCHEMA
            continue
        try:
            out[name] = check_value(value, spec)
        except ValueError as e:
            errors[name] = str(e)
    for name, spec in schema.items():
        if not spec.get("optional") and name not in params:
            errors[name] = MISSING_PARAM
    if errors:
        raise param_error(errors)
    return out


# --------------------------------------------------------------------------- API routes

class Route:
    def __init__(self, method, pattern, fn, schema=None, perm=None, noauth=False):
        self.method, self.pattern, self.fn = method, pattern, fn
        self.segs = pattern.strip("/").split("/")
        self.schema = schema or {}
        self.perm = perm            # (privilege, ACL path template) or None
        self.noauth = noauth
        self.template = f"{method} {pattern}"

    def match(self, method: str, segs: list[str]) -> dict | None:
        if method != self.method or len(segs) != len(self.segs):
            return None
        params = {}
        for want, got in zip(self.segs, segs):
            if want.startswith("{"):
                if got == "":
                    return None
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


class Api:
    """The /api2/json surface: routing, the fixed check order of pve-http-server, handlers."""

    def __init__(self, state: State):
        self.state = state
        node_vmid = {"node": NODE, "vmid": VMID}
        audit = ("VM.Audit", "/vms/{vmid}")
        power = ("VM.PowerMgmt", "/vms/{vmid}")
        R = Route
        self.routes = [
            R("GET", "/version", self.version),
            R("GET", "/access/domains", self.domains, noauth=True),
            R("POST", "/access/ticket", self.ticket, noauth=True, schema={
                "username": {"type": "string"}, "password": {"type": "string"},
                "realm": opt({"type": "string"}), "otp": opt({"type": "string"}),
                "path": opt({"type": "string"}), "privs": opt({"type": "string"}),
                "new-format": BOOL, "tfa-challenge": opt({"type": "string"})}),
            R("GET", "/nodes", self.nodes),
            R("GET", "/nodes/{node}", self.node_index, {"node": NODE}),
            R("GET", "/nodes/{node}/status", self.node_status, {"node": NODE},
              perm=("Sys.Audit", "/nodes/{node}")),
            R("GET", "/nodes/{node}/lxc", self.lxc_list, {"node": NODE}),
            R("GET", "/nodes/{node}/lxc/{vmid}", self.lxc_index, node_vmid),
            R("GET", "/nodes/{node}/lxc/{vmid}/config", self.lxc_config,
              {**node_vmid, "current": BOOL, "snapshot": opt({"type": "string"})}, perm=audit),
            R("GET", "/nodes/{node}/lxc/{vmid}/status", self.lxc_status_index, node_vmid),
            R("GET", "/nodes/{node}/lxc/{vmid}/status/current", self.lxc_current, node_vmid,
              perm=audit),
            R("GET", "/nodes/{node}/lxc/{vmid}/interfaces", self.lxc_interfaces, node_vmid,
              perm=audit),
            R("GET", "/nodes/{node}/qemu", self.qemu_list, {"node": NODE, "full": BOOL}),
            R("GET", "/nodes/{node}/qemu/{vmid}", self.qemu_index, node_vmid),
            R("GET", "/nodes/{node}/qemu/{vmid}/config", self.qemu_config,
              {**node_vmid, "current": BOOL, "snapshot": opt({"type": "string"})}, perm=audit),
            R("GET", "/nodes/{node}/qemu/{vmid}/status", self.qemu_status_index, node_vmid),
            R("GET", "/nodes/{node}/qemu/{vmid}/status/current", self.qemu_current, node_vmid,
              perm=audit),
            R("GET", "/nodes/{node}/qemu/{vmid}/agent", self.agent_index, node_vmid,
              perm=audit),
            R("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
              self.agent_network, node_vmid,
              perm=(("VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"), "/vms/{vmid}")),
            R("GET", "/nodes/{node}/tasks", self.node_tasks, {
                "node": NODE, "start": opt({"type": "integer", "minimum": 0}),
                "limit": opt({"type": "integer", "minimum": 0}),
                "userfilter": opt({"type": "string"}), "typefilter": opt({"type": "string"}),
                "vmid": opt(VMID), "errors": BOOL,
                "source": opt({"type": "string", "enum": ["archive", "active", "all"]}),
                "since": opt({"type": "integer"}), "until": opt({"type": "integer"}),
                "statusfilter": opt({"type": "string"})}),
            R("GET", "/nodes/{node}/tasks/{upid}", self.task_index,
              {"node": NODE, "upid": {"type": "string"}}),
            R("DELETE", "/nodes/{node}/tasks/{upid}", self.task_stop,
              {"node": NODE, "upid": {"type": "string"}}),
            R("GET", "/nodes/{node}/tasks/{upid}/status", self.task_status,
              {"node": NODE, "upid": {"type": "string"}}),
            R("GET", "/nodes/{node}/tasks/{upid}/log", self.task_log, {
                "node": NODE, "upid": {"type": "string"},
                "start": opt({"type": "integer", "minimum": 0}),
                "limit": opt({"type": "integer", "minimum": 0}), "download": BOOL}),
            R("GET", "/cluster/resources", self.resources, {
                "type": opt({"type": "string", "enum": ["vm", "storage", "node", "sdn"]})}),
            R("GET", "/cluster/tasks", self.cluster_tasks),
            R("GET", "/cluster/status", self.cluster_status),
        ]
        lifecycle_schemas = {
            "start": {**node_vmid, "skiplock": BOOL, "debug": BOOL},
            "stop": {**node_vmid, "skiplock": BOOL, "overrule-shutdown": BOOL},
            "shutdown": {**node_vmid, "timeout": opt({"type": "integer", "minimum": 0}),
                         "forceStop": BOOL},
            "reboot": {**node_vmid, "timeout": opt({"type": "integer", "minimum": 0})},
            "suspend": node_vmid,
            "resume": node_vmid,
        }
        for action, schema in lifecycle_schemas.items():
            self.routes.append(R("POST", "/nodes/{node}/lxc/{vmid}/status/" + action,
                                 self._lifecycle_handler(action), schema, perm=power))
        text = {"type": "string"}
        timeout = opt({"type": "integer", "minimum": 0})
        qm_schemas = {
            "start": {**node_vmid, "skiplock": BOOL, "stateuri": opt(text),
                      "migratedfrom": opt(text),
                      "migration_type": opt({"type": "string", "enum": ["secure", "insecure"]}),
                      "migration_network": opt(text), "machine": opt(text),
                      "force-cpu": opt(text), "targetstorage": opt(text), "timeout": timeout,
                      "with-conntrack-state": BOOL, "nets-host-mtu": opt(text)},
            "stop": {**node_vmid, "skiplock": BOOL, "migratedfrom": opt(text),
                     "timeout": timeout, "keepActive": BOOL, "overrule-shutdown": BOOL},
            "reset": {**node_vmid, "skiplock": BOOL},
            "shutdown": {**node_vmid, "skiplock": BOOL, "timeout": timeout, "forceStop": BOOL,
                         "keepActive": BOOL},
            "reboot": {**node_vmid, "timeout": timeout},
            "suspend": {**node_vmid, "skiplock": BOOL, "todisk": BOOL,
                        "statestorage": opt(text)},
            "resume": {**node_vmid, "skiplock": BOOL, "nocheck": BOOL},
        }
        for action, schema in qm_schemas.items():
            self.routes.append(R("POST", "/nodes/{node}/qemu/{vmid}/status/" + action,
                                 self._qm_lifecycle_handler(action), schema, perm=power))

    def match(self, method: str, segs: list[str]):
        for route in self.routes:
            params = route.match(method, segs)
            if params is not None:
                return route, params
        return None, {}

    def handle(self, headers, method: str, rel: str, route, uri: dict, query: str, body: bytes):
        """Order of pve-http-server: auth → 501 → permissions → proxy to node → params → code."""
        st = self.state
        if st.slow > 0:
            time.sleep(st.slow)
        failure = st.take_failure()
        if failure:
            raise ApiError(failure, reason_phrase(failure))
        auth = None
        if route is None or not route.noauth:
            auth = st.authenticate(headers, method)
        if route is None:
            raise ApiError(501, f"Method '{method} {rel}' not implemented", {"data": None})
        if route.perm:
            priv, path = route.perm
            if not auth.has(priv):
                raise perm_error(path.format(**uri), priv)
        if "node" in uri:
            self._proxy_check(uri["node"])
        params = collect_params(uri, query, body, headers)
        return route.fn(auth, validate(params, route.schema))

    def _proxy_check(self, node: str) -> None:
        with self.state.lock:
            n = self.state.nodes.get(node)
            online = n is not None and n.online
        if n is None:
            raise handler_error(f"hostname lookup '{node}' failed - failed to get address info "
                                f"for: {node}: Name or service not known")
        if not online:
            # AnyEvent::HTTP's own status for a failed connect: no body at all
            raise ApiError(n.down_status, n.down_reason)

    # ------------------------------------------------------------------ handlers

    def version(self, auth, p):
        return dict(PVE_VERSION)

    def domains(self, auth, p):
        return [{"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
                {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"}]

    def ticket(self, auth, p):
        st = self.state
        username = p["username"]
        if "@" not in username and p.get("realm"):
            username = f"{username}@{p['realm']}"
        password = p["password"]
        if password.startswith("PVE:"):
            ok = st.ticket_user(password) == username
        else:
            known = st.users.get(username)
            ok = known is not None and hmac.compare_digest(known.encode(), password.encode())
        if not ok:
            raise ApiError(401, "authentication failure",
                           {"data": None, "message": "authentication failure\n"})
        ticket, csrf = st.issue_ticket(username)
        return {"username": username, "ticket": ticket, "CSRFPreventionToken": csrf,
                "cap": full_cap()}

    def nodes(self, auth, p):
        out = []
        with self.state.lock:
            for n in self.state.nodes.values():
                entry = {"id": f"node/{n.name}", "type": "node", "node": n.name,
                         "status": "online" if n.online else "offline", "level": "",
                         "ssl_fingerprint": fingerprint(n.name)}
                if n.online:
                    entry.update({"uptime": n.uptime(), "cpu": 0.0231, "maxcpu": 16,
                                  "mem": 9 * GIB, "maxmem": 64 * GIB, "disk": 21 * GIB,
                                  "maxdisk": 98 * GIB})
                out.append(entry)
        return out

    def node_index(self, auth, p):
        return [{"name": n} for n in ("lxc", "qemu", "status", "tasks", "version")]

    def node_status(self, auth, p):
        n = self.state.nodes[p["node"]]
        return {"uptime": n.uptime(), "cpu": 0.0231, "loadavg": ["0.31", "0.27", "0.22"],
                "memory": {"total": 64 * GIB, "used": 9 * GIB, "free": 55 * GIB},
                "pveversion": f"pve-manager/{PVE_VERSION['version']}/{PVE_VERSION['repoid']}",
                "kversion": "Linux 6.14.8-2-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.8-2",
                "cpuinfo": {"cpus": 16, "sockets": 1, "cores": 8, "model": "Simulated CPU"}}

    def lxc_list(self, auth, p):
        node, now = p["node"], time.time()
        with self.state.lock:
            cts = sorted((c for c in self.state.guests.values()
                          if isinstance(c, CT) and c.node == node), key=lambda c: c.vmid)
            return [c.status_current(now, with_ha=False) for c in cts if auth.has("VM.Audit")]

    def _ct_or_500(self, node: str, vmid: int) -> CT:
        ct = self.state.local_ct(node, vmid)
        if ct is None:
            raise handler_error(missing_conf(node, vmid))
        return ct

    def lxc_index(self, auth, p):
        with self.state.lock:
            self._ct_or_500(p["node"], p["vmid"])
        return [{"subdir": s} for s in ("config", "status", "snapshot", "firewall", "rrd")]

    def lxc_status_index(self, auth, p):
        with self.state.lock:
            self._ct_or_500(p["node"], p["vmid"])
        return [{"subdir": s} for s in ("current", "start", "stop", "shutdown", "reboot",
                                        "migrate")]

    def lxc_config(self, auth, p):
        with self.state.lock:
            return self._ct_or_500(p["node"], p["vmid"]).config()

    def lxc_current(self, auth, p):
        with self.state.lock:
            return self._ct_or_500(p["node"], p["vmid"]).status_current(time.time())

    def lxc_interfaces(self, auth, p):
        """PVE::LXC::get_interfaces: no running CT here (stopped, or not on this node) is
        `return` without a value, so `{"data":null}` with 200."""
        with self.state.lock:
            ct = self.state.local_ct(p["node"], p["vmid"])
            if ct is None or ct.status != "running":
                return None
            return ct.interfaces(time.time())

    # -- QEMU

    def _vm_or_500(self, node: str, vmid: int) -> VM:
        vm = self.state.local_vm(node, vmid)
        if vm is None:
            raise handler_error(missing_conf(node, vmid, "qemu"))
        return vm

    def qemu_list(self, auth, p):
        node, now = p["node"], time.time()
        with self.state.lock:
            vms = sorted((g for g in self.state.guests.values()
                          if isinstance(g, VM) and g.node == node), key=lambda g: g.vmid)
            return [g.status_current(now, full=bool(p.get("full"))) for g in vms
                    if auth.has("VM.Audit")]

    def qemu_index(self, auth, p):
        with self.state.lock:
            self._vm_or_500(p["node"], p["vmid"])
        return [{"subdir": s} for s in ("config", "pending", "cloudinit", "vncproxy", "status",
                                        "agent", "snapshot", "firewall", "rrd", "migrate")]

    def qemu_status_index(self, auth, p):
        with self.state.lock:
            self._vm_or_500(p["node"], p["vmid"])
        return [{"subdir": s} for s in ("current", "start", "stop", "reset", "shutdown",
                                        "suspend", "reboot")]

    def qemu_config(self, auth, p):
        with self.state.lock:
            return self._vm_or_500(p["node"], p["vmid"]).config()

    def qemu_current(self, auth, p):
        with self.state.lock:
            return self._vm_or_500(p["node"], p["vmid"]).status_current(time.time())

    def agent_index(self, auth, p):
        return [{"name": c} for c in ("fsfreeze-freeze", "fsfreeze-status", "fsfreeze-thaw",
                                      "fstrim", "get-fsinfo", "get-host-name",
                                      "get-memory-block-info", "get-memory-blocks",
                                      "get-osinfo", "get-time", "get-timezone", "get-users",
                                      "get-vcpus", "info", "network-get-interfaces", "ping",
                                      "shutdown", "suspend-disk", "suspend-hybrid",
                                      "suspend-ram")]

    def agent_network(self, auth, p):
        """assert_agent_available, then guest-network-get-interfaces."""
        node, vmid = p["node"], p["vmid"]
        with self.state.lock:
            vm = self._vm_or_500(node, vmid)
            if not vm.agent:
                raise handler_error("No QEMU guest agent configured")
            if vm.status != "running":
                raise handler_error(f"VM {vmid} is not running")
            now = time.time()
            if vm.agent_up(now):
                return {"result": vm.agent_interfaces(now)}
        # guest-ping gets no answer: QMP gives up after its timeout (3 s)
        time.sleep(self.state.args.agent_timeout)
        raise handler_error("QEMU guest agent is not running")

    def _qm_lifecycle_handler(self, action: str):
        def handler(auth, p):
            return self.state.qm_lifecycle(p["node"], p["vmid"], action, p, auth.full).upid
        return handler

    def _lifecycle_handler(self, action: str):
        def handler(auth, p):
            return self.state.lifecycle(p["node"], p["vmid"], action, p, auth.full).upid
        return handler

    # -- tasks

    def _task(self, p, auth, need_priv: str) -> Task:
        upid = p["upid"]
        if not UPID_RE.match(upid):
            raise param_error({"upid": "unable to parse worker upid"})
        with self.state.lock:
            task = self.state.tasks.get(upid)
        if task is None or task.node != p["node"]:
            raise param_error({"upid": "no such task"})
        if not task.owned_by(auth) and not auth.has(need_priv):
            raise perm_error(f"/nodes/{p['node']}", need_priv)
        return task

    def task_index(self, auth, p):
        return [{"name": "log"}, {"name": "status"}]

    def task_status(self, auth, p):
        task = self._task(p, auth, "Sys.Audit")
        with self.state.lock:
            d = task.describe()
            d["status"] = task.status
            if task.status == "stopped":
                d["exitstatus"] = task.exitstatus
            return d

    def task_log(self, auth, p):
        task = self._task(p, auth, "Sys.Audit")
        with self.state.lock:
            lines = list(task.log)
        start, limit = p.get("start", 0), p.get("limit", 50)
        out = [{"n": i + 1, "t": t} for i, t in enumerate(lines)][start:start + limit]
        return out or [{"n": 1, "t": "no content"}]

    def task_stop(self, auth, p):
        task = self._task(p, auth, "Sys.Modify")
        task.abort.set()
        return None

    def node_tasks(self, auth, p):
        st = self.state
        node = p["node"]
        start, limit = p.get("start", 0), p.get("limit", 50)
        source = p.get("source", "archive")
        wanted = {"ok", "warning", "error", "unknown"}
        if p.get("errors"):
            wanted.discard("ok")
        elif p.get("statusfilter") is not None:
            wanted = {s.strip().lower() for s in re.split(r"[,;\s]+", p["statusfilter"]) if s}
        auditor = auth.has("Sys.Audit")
        with st.lock:
            history = st.node_tasks[node]
            active = sorted((t for t in history if t.status == "running"),
                            key=lambda t: t.seq, reverse=True)
            archive = sorted((t for t in history if t.status == "stopped"),
                             key=lambda t: t.end_seq, reverse=True)
            candidates = []
            if source in ("active", "all"):
                candidates += active
            if source != "active":
                candidates += archive
            out, count = [], 0
            for t in candidates:
                d = t.describe()
                if p.get("userfilter") and p["userfilter"].lower() not in d["user"].lower():
                    continue
                if not (auditor or t.owned_by(auth)):
                    continue
                if p.get("typefilter") and t.type != p["typefilter"]:
                    continue
                if "vmid" in p and t.id != str(p["vmid"]):
                    continue
                if "since" in p and t.starttime < p["since"]:
                    continue
                if "until" in p and t.starttime > p["until"]:
                    continue
                if status_kind(t.exitstatus) not in wanted:
                    continue
                count += 1
                if count <= start or len(out) >= limit:
                    continue
                if t.status == "stopped":
                    d["endtime"], d["status"] = t.endtime, t.exitstatus
                else:
                    d["status"] = "RUNNING"
                out.append(d)
            return out

    def cluster_tasks(self, auth, p):
        """PVE::Cluster::get_tasklist: each node's broadcast list, in node order (a node that
        cannot be reached keeps showing what it broadcast last)."""
        st = self.state
        out = []
        with st.lock:
            for name, node in st.nodes.items():
                tasks = node.frozen_tasks if node.frozen_tasks is not None else \
                    st.node_tasklist(name)
                for d in tasks:
                    if auth.has("Sys.Audit") or d["user"] == auth.full:
                        out.append(dict(d))
        return out

    def resources(self, auth, p):
        """Guests (the live id list, with what pvestatd last said about each), then nodes,
        then storage, in the order API2/Cluster.pm builds them."""
        st, now = self.state, time.time()
        kind = p.get("type")
        out = []
        with st.lock:
            if kind in (None, "vm") and auth.has("VM.Audit"):
                for vmid in sorted(st.guests, key=str):     # `sort keys %$idlist`
                    g = st.guests[vmid]
                    e = {"id": f"{g.TYPE}/{vmid}", "type": g.TYPE, "vmid": vmid,
                         "node": g.node, "status": "unknown"}
                    stats = st.guest_stats(g, now)
                    if stats is not None:
                        e.update(stats)
                    if g.tags:                  # config properties: always current
                        e["tags"] = g.tags
                    if g.lock:
                        e["lock"] = g.lock
                    if g.ha:
                        e["hastate"] = g.ha_state
                    out.append(e)
            if kind in (None, "node"):
                for n in st.nodes.values():
                    e = {"id": f"node/{n.name}", "type": "node", "node": n.name,
                         "status": "online" if n.online else "offline", "level": "",
                         "maxcpu": 16, "maxmem": 64 * GIB, "maxdisk": 98 * GIB,
                         "cgroup-mode": 2, "host-arch": "x86_64"}
                    if n.online:
                        e.update({"uptime": n.uptime(), "cpu": 0.0231, "mem": 9 * GIB,
                                  "disk": 21 * GIB})
                    out.append(e)
            if kind in (None, "storage"):
                for n in st.nodes.values():
                    entry = {"id": f"storage/{n.name}/local", "storage": "local", "node": n.name,
                             "type": "storage", "plugintype": "dir", "shared": 0,
                             "content": "backup,iso,vztmpl",
                             "status": "available" if n.online else "unknown"}
                    if n.online:
                        entry.update({"disk": 21 * GIB, "maxdisk": 98 * GIB})
                    out.append(entry)
        return out

    def cluster_status(self, auth, p):
        with self.state.lock:
            nodes = list(self.state.nodes.values())
            online = sum(1 for n in nodes if n.online)
            out = []
            if len(nodes) > 1:
                out.append({"type": "cluster", "id": "cluster", "name": "simcluster",
                            "nodes": len(nodes), "quorate": int(online * 2 > len(nodes)),
                            "version": len(nodes)})
            for i, n in enumerate(nodes):
                out.append({"type": "node", "id": f"node/{n.name}", "name": n.name,
                            "nodeid": i + 1, "ip": n.ip, "online": int(n.online),
                            "local": int(i == 0), "level": ""})
            return out


def status_kind(exitstatus: str | None) -> str:
    """PVE::Tools::upid_normalize_status_type."""
    if not exitstatus:
        return "unknown"
    if exitstatus == "OK":
        return "ok"
    if exitstatus.startswith("WARNINGS:"):
        return "warning"
    return "error"


def collect_params(uri: dict, query: str, body: bytes, headers) -> dict:
    """URI params + query string + body (form or JSON), like pve-http-server merges them."""
    extra: dict = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                obj = json.loads(body)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                raise ApiError(400, "malformed JSON string",
                               {"data": None, "message": "malformed JSON string\n"})
            extra.update(obj)
        else:
            extra.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    params = dict(uri)
    for k, v in extra.items():
        if k in uri and str(v) != uri[k]:
            raise param_error({k: "duplicate parameter (already defined in URI)"})
        params[k] = v
    return params


def full_cap() -> dict:
    vm = ["VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM",
          "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType",
          "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Console",
          "VM.GuestAgent.Audit", "VM.Migrate", "VM.PowerMgmt", "VM.Snapshot",
          "VM.Snapshot.Rollback", "Permissions.Modify"]
    return {
        "vms": {k: 1 for k in vm},
        "storage": {k: 1 for k in ["Datastore.Allocate", "Datastore.AllocateSpace",
                                   "Datastore.AllocateTemplate", "Datastore.Audit",
                                   "Permissions.Modify"]},
        "access": {k: 1 for k in ["Group.Allocate", "Permissions.Modify", "User.Modify"]},
        "nodes": {k: 1 for k in ["Permissions.Modify", "Sys.Audit", "Sys.Console",
                                 "Sys.Incoming", "Sys.Modify", "Sys.PowerMgmt", "Sys.Syslog"]},
        "dc": {k: 1 for k in ["SDN.Allocate", "SDN.Audit", "SDN.Use", "Sys.Audit",
                              "Sys.Modify"]},
        "sdn": {k: 1 for k in ["Permissions.Modify", "SDN.Allocate", "SDN.Audit", "SDN.Use"]},
        "mapping": {k: 1 for k in ["Mapping.Audit", "Mapping.Modify", "Mapping.Use",
                                   "Permissions.Modify"]},
    }


def fingerprint(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --------------------------------------------------------------------------- control API

class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


GUEST_FLAGS = ("template", "ha", "ignore_shutdown", "fail_start", "hang", "network")
CT_FLAGS = (*GUEST_FLAGS, "fail_suspend")
VM_FLAGS = (*GUEST_FLAGS, "agent")
GUEST_KEYS = {"status", "lock", "name", "tags", "ip", "ip_delay"}
CT_KEYS = {*GUEST_KEYS, "suspended", *CT_FLAGS}
VM_KEYS = {*GUEST_KEYS, "qmpstatus", "hibernated", "agent_delay", *VM_FLAGS}
KINDS = {"ct": ("lxc", CT, CT_KEYS, CT_FLAGS), "vm": ("qemu", VM, VM_KEYS, VM_FLAGS)}
CT_ACTIONS = ("start", "stop", "shutdown", "reboot", "suspend", "resume")
VM_ACTIONS = (*CT_ACTIONS, "reset")


class Control:
    """/_sim/...: no auth, JSON in and out. Steers the simulated cluster for tests."""

    def __init__(self, state: State):
        self.state = state

    def handle(self, method: str, path: str, query: str, body: bytes) -> tuple[int, object]:
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            return 400, {"error": "body must be a JSON object"}
        segs = path.strip("/").split("/")[1:]
        try:
            return 200, self._route(method, segs, dict(parse_qsl(query)), data)
        except ControlError as e:
            return e.status, {"error": str(e)}

    def _route(self, method, segs, query, data):
        st = self.state
        if method == "GET" and segs == ["stats"]:
            with st.lock:
                return {"requests": dict(st.stats), "total": sum(st.stats.values())}
        if method == "POST" and segs == ["stats", "reset"]:
            with st.lock:
                st.stats.clear()
            return {"ok": True}
        if segs and segs[0] in KINDS:
            kind = segs[0]
            if segs == [kind] and method == "POST":
                return self.create(kind, data)
            if len(segs) == 2:
                vmid = self._vmid(segs[1])
                if method == "GET":
                    with st.lock:
                        return self._guest(kind, vmid).internal(time.time())
                if method == "POST":
                    return self.modify(kind, vmid, data)
                if method == "DELETE":
                    return self.destroy(kind, vmid)
            if len(segs) == 4 and segs[2] == "action" and method == "POST":
                return self.action(kind, self._vmid(segs[1]), segs[3], data)
            if len(segs) == 3 and segs[2] == "migrate" and method == "POST":
                return self.migrate(kind, self._vmid(segs[1]), data)
        if len(segs) == 2 and segs[0] == "node" and method == "POST":
            return self.set_node(segs[1], data)
        if method == "POST" and segs == ["tickets", "expire"]:
            with st.lock:
                st.expired_tickets.update(st.tickets)
                return {"expired": len(st.tickets)}
        if method == "POST" and segs == ["token"]:
            return self.add_token(data)
        if method == "POST" and segs == ["slow"]:
            seconds = data.get("seconds", 0)
            if not isinstance(seconds, (int, float)) or seconds < 0:
                raise ControlError(400, "seconds must be a number >= 0")
            st.slow = float(seconds)
            return {"slow": st.slow}
        if method == "POST" and segs == ["fail"]:
            status, count = data.get("status", 503), data.get("count", 1)
            if not isinstance(status, int) or not 100 <= status <= 999 or \
                    not isinstance(count, int) or count < 0:
                raise ControlError(400, "status must be an HTTP status, count an integer >= 0")
            with st.lock:
                st.fail_status, st.fail_count = status, count
            return {"status": status, "count": count}
        if method == "GET" and segs == ["tasks"]:
            return self.list_tasks(query)
        if method == "POST" and segs == ["pvestatd"]:
            return self.pvestatd(data)
        raise ControlError(404, f"no control endpoint {method} /_sim/{'/'.join(segs)}")

    @staticmethod
    def _vmid(text) -> int:
        try:
            return int(text)
        except (TypeError, ValueError):
            raise ControlError(400, f"bad vmid {text!r}") from None

    def _guest(self, kind: str, vmid: int) -> Guest:
        g = self.state.guests.get(vmid)
        cls = KINDS[kind][1]
        if not isinstance(g, cls):
            raise ControlError(404, f"{'CT' if kind == 'ct' else 'VM'} {vmid} does not exist")
        return g

    # kept for callers of the old name
    def _ct(self, vmid: int) -> CT:
        return self._guest("ct", vmid)

    def create(self, kind: str, data: dict):
        st = self.state
        ptype, cls, keys, _ = KINDS[kind]
        vmid = self._vmid(data.get("vmid"))
        node = data.get("node", next(iter(st.nodes)))
        unknown = set(data) - keys - {"vmid", "node"}
        if unknown:
            raise ControlError(400, f"unknown keys: {sorted(unknown)}")
        with st.lock:
            if vmid in st.guests:
                what = "CT" if isinstance(st.guests[vmid], CT) else "VM"
                raise ControlError(409, f"{what} {vmid} already exists")
            if node not in st.nodes:
                raise ControlError(400, f"no such node {node!r}")
            prefix = "ct" if kind == "ct" else "vm"
            g = cls(vmid, node, str(data.get("name") or f"{prefix}{vmid}"))
            g.ip_delay = st.args.ip_delay
            if isinstance(g, VM):
                g.agent_delay = st.args.agent_delay
            st.guests[vmid] = g
            st.record_task(node, "vzcreate" if kind == "ct" else "qmcreate", vmid)
            self._apply(g, {"status": "stopped", **data})
            return g.internal(time.time())

    # kept for callers of the old name
    def create_ct(self, data: dict):
        return self.create("ct", data)

    def destroy(self, kind: str, vmid: int):
        st = self.state
        with st.lock:
            g = self._guest(kind, vmid)
            del st.guests[vmid]
            st.record_task(g.node, "vzdestroy" if kind == "ct" else "qmdestroy", vmid)
        return {"ok": True}

    def modify(self, kind: str, vmid: int, data: dict):
        unknown = set(data) - KINDS[kind][2]
        if unknown:
            raise ControlError(400, f"unknown keys: {sorted(unknown)}")
        with self.state.lock:
            g = self._guest(kind, vmid)
            self._apply(g, data)
            return g.internal(time.time())

    def _apply(self, g: Guest, data: dict) -> None:
        """Outside changes: no task is recorded (crash, shutdown inside the guest, ...)."""
        st = self.state
        vm = isinstance(g, VM)
        if "status" in data:
            allowed = ("running", "stopped", "paused") if vm else ("running", "stopped")
            if data["status"] not in allowed:
                raise ControlError(400, "status must be " + " or ".join(map(repr, allowed)))
            if data["status"] in ("running", "paused") and g.status != "running":
                st.set_running(g)
            elif data["status"] == "stopped":
                st.set_stopped(g)
            if vm and g.status == "running":
                g.qmpstatus = "paused" if data["status"] == "paused" else "running"
        if "qmpstatus" in data:
            if data["qmpstatus"] not in ("running", "paused", "prelaunch", "suspended"):
                raise ControlError(400, "qmpstatus must be running, paused, prelaunch or "
                                        "suspended")
            if g.status != "running":
                st.set_running(g)
            g.qmpstatus = data["qmpstatus"]
        if "lock" in data:
            g.lock = data["lock"] or None
        if "name" in data:
            g.name = str(data["name"])
        if "tags" in data:
            tags = data["tags"]
            g.tags = ";".join(tags) if isinstance(tags, list) else (tags or None)
        if "ip" in data:
            g.ip = str(data["ip"])
        for key in ("ip_delay", "agent_delay"):
            if key in data:
                value = data[key]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise ControlError(400, f"{key} must be a number of seconds >= 0")
                setattr(g, key, float(value))
        for flag in (VM_FLAGS if vm else CT_FLAGS):
            if flag in data:
                setattr(g, flag, bool(data[flag]))
        if "ha" in data and data["ha"]:
            g.ha_state = "started" if g.status == "running" else "stopped"
        if "suspended" in data:
            if data["suspended"]:
                st.set_stopped(g)
                g.suspended = True
                st.record_task(g.node, "vzsuspend", g.vmid)
            else:
                g.suspended = False
        if "hibernated" in data:
            if data["hibernated"]:
                st.set_stopped(g)
                g.lock = "suspended"
                st.record_task(g.node, "qmsuspend", g.vmid)
            elif g.lock == "suspended":
                g.lock = None

    def action(self, kind: str, vmid: int, action: str, data: dict):
        if action not in (VM_ACTIONS if kind == "vm" else CT_ACTIONS):
            raise ControlError(404, f"unknown action {action!r}")
        with self.state.lock:
            node = self._guest(kind, vmid).node
        params = {k: data[k] for k in ("timeout", "forceStop", "overrule-shutdown", "todisk")
                  if k in data}
        try:
            if kind == "vm":
                task = self.state.qm_lifecycle(node, vmid, action, params, "root@pam")
            else:
                task = self.state.lifecycle(node, vmid, action, params, "root@pam")
        except ApiError as e:
            raise ControlError(409, (e.body or {}).get("message", e.reason).strip()) from None
        return {"upid": task.upid}

    def migrate(self, kind: str, vmid: int, data: dict):
        st = self.state
        unknown = set(data) - {"target", "instant"}
        if unknown:
            raise ControlError(400, f"unknown keys: {sorted(unknown)}")
        target = data.get("target")
        with st.lock:
            g = self._guest(kind, vmid)
            if target not in st.nodes:
                raise ControlError(400, f"no such node {target!r}")
            if target == g.node:
                raise ControlError(409, f"{'CT' if kind == 'ct' else 'VM'} {vmid} is already "
                                        f"on {target}")
            if not st.nodes[target].online or not st.nodes[g.node].online:
                raise ControlError(409, "both nodes must be online")
        task = st.migrate(vmid, target, bool(data.get("instant")))
        return {"upid": task.upid}

    def set_node(self, name: str, data: dict):
        st = self.state
        unknown = set(data) - {"online", "crash", "status", "reason"}
        if unknown:
            raise ControlError(400, f"unknown keys: {sorted(unknown)}")
        with st.lock:
            node = st.nodes.get(name)
            if node is None:
                raise ControlError(404, f"no such node {name!r}")
            if "status" in data:
                if not isinstance(data["status"], int) or not 100 <= data["status"] <= 999:
                    raise ControlError(400, "status must be an HTTP status")
                node.down_status = data["status"]
            if "reason" in data:
                node.down_reason = str(data["reason"])
            if "online" in data:
                st.set_node_online(name, bool(data["online"]), bool(data.get("crash")))
            return {"node": name, "online": node.online}

    def pvestatd(self, data: dict):
        """Run pvestatd now on the given nodes (default: all online ones)."""
        st = self.state
        with st.lock:
            names = data.get("nodes") or [n for n, node in st.nodes.items() if node.online]
            for name in names:
                if name not in st.nodes:
                    raise ControlError(400, f"no such node {name!r}")
            now = time.time()
            for name in names:
                st.publish(name, now)
        return {"published": names}

    def add_token(self, data: dict):
        try:
            tokenid, secret = parse_token(str(data.get("token", "")))
        except ValueError as e:
            raise ControlError(400, str(e)) from None
        privs = data.get("privileges")
        if privs is not None and not (isinstance(privs, list) and all(isinstance(x, str)
                                                                      for x in privs)):
            raise ControlError(400, "privileges must be a list of strings")
        with self.state.lock:
            self.state.tokens[tokenid] = (secret, None if privs is None else frozenset(privs))
        return {"tokenid": tokenid, "privileges": privs}

    def list_tasks(self, query: dict):
        with self.state.lock:
            tasks = sorted(self.state.tasks.values(), key=lambda t: t.seq, reverse=True)
            out = []
            for t in tasks:
                if "vmid" in query and t.id != query["vmid"]:
                    continue
                if "node" in query and t.node != query["node"]:
                    continue
                out.append({"upid": t.upid, "node": t.node, "type": t.type, "id": t.id,
                            "user": t.user, "status": t.status, "exitstatus": t.exitstatus,
                            "starttime": t.starttime, "endtime": t.endtime})
            return out


# --------------------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = "pve-api-daemon/3.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 300   # idle keep-alive connections are dropped after this

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, format, *args):
        if not self.server.sim_args.quiet:
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, "Bad Request", None)
            return
        url = urlsplit(self.path)
        try:
            if url.path == "/_sim" or url.path.startswith("/_sim/"):
                status, obj = self.server.control.handle(method, url.path, url.query, body)
                self._send(status, reason_phrase(status), obj, ctype="application/json")
            elif url.path == "/api2/json" or url.path.startswith("/api2/json/"):
                self._api(method, url.path[len("/api2/json"):], url.query, body, started)
            else:
                self._send(404, "Not Found", None)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def _api(self, method: str, rel: str, query: str, body: bytes, started: float) -> None:
        api = self.server.api
        rel = rel.rstrip("/") or "/"
        segs = [unquote(s) for s in rel.split("/")[1:]] if rel != "/" else []
        route, uri = api.match(method, segs)
        api.state.count(route.template if route else f"{method} {rel}")
        try:
            data = api.handle(self.headers, method, rel, route, uri, query, body)
            self._send(200, "OK", {"data": data})
        except ApiError as e:
            if e.status == 401:
                # pve-http-server delays every 401 by ~3 s (counted from the request start).
                delay = self.server.sim_args.auth_delay - (time.monotonic() - started)
                if delay > 0:
                    time.sleep(delay)
            self._send(e.status, e.reason, e.body)
        except Exception as e:  # a simulator bug: answer like a handler crash
            self._send(500, "simulator internal error",
                       {"data": None, "message": f"simulator internal error: {e!r}\n"})
            raise

    def _send(self, status: int, reason: str, obj, ctype="application/json;charset=UTF-8"):
        reason = reason.split("\n")[0].replace("\r", " ").encode("latin-1", "replace").decode(
            "latin-1")
        payload = b"" if obj is None else json.dumps(
            obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.send_response(status, reason)
        if payload:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        self.send_header("Expires", self.date_time_string())
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, family, args, state: State, ssl_ctx: ssl.SSLContext | None):
        self.address_family = family
        self.sim_args, self.state, self.ssl_ctx = args, state, ssl_ctx
        self.api, self.control = Api(state), Control(state)
        super().__init__(address, Handler)

    def server_bind(self):
        # HTTPServer.server_bind would call socket.getfqdn(), a DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so one slow or
        # broken client cannot stall the accept loop.
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        request.settimeout(15)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            if not self.sim_args.quiet:
                sys.stderr.write(f"{client_address[0]} TLS handshake failed: {e}\n")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


# --------------------------------------------------------------------------- main

def make_cert(directory: str) -> tuple[str, str]:
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Proxmox VE API simulator (LXC and QEMU lifecycle subset). "
                    "Control API under /_sim.")
    ap.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS")
    ap.add_argument("--cert", help="PEM certificate (default: self-signed, made at start)")
    ap.add_argument("--key", help="PEM private key for --cert")
    ap.add_argument("--ca-out", help="copy the certificate in use here (for a client's ca_file)")
    ap.add_argument("--nodes", default="pve1", help="comma-separated node names (default pve1)")
    ap.add_argument("--cts", type=int, default=3, help="number of LXC containers (default 3)")
    ap.add_argument("--first-vmid", type=int, default=100, help="first vmid (default 100)")
    ap.add_argument("--stopped-fraction", type=float, default=0.0,
                    help="fraction of the initial CTs that start out stopped (default 0)")
    ap.add_argument("--vms", type=int, default=0, help="number of QEMU VMs (default 0)")
    ap.add_argument("--first-vm-vmid", type=int,
                    help="vmid of the first VM (default: right after the CTs)")
    ap.add_argument("--vms-paused", type=int, default=0,
                    help="the first N VMs run paused (qmpstatus paused)")
    ap.add_argument("--vms-stopped", type=int, default=0,
                    help="the next N VMs are stopped")
    ap.add_argument("--vm-templates", type=int, default=0,
                    help="the next N VMs are templates (stopped)")
    ap.add_argument("--vms-without-agent", type=int, default=0,
                    help="the last N VMs have no guest agent configured")
    ap.add_argument("--ip-delay", type=float, default=0.0,
                    help="a guest reports its IP address this many seconds after it boots "
                         "(default 0)")
    ap.add_argument("--agent-delay", type=float, default=0.0,
                    help="a VM's guest agent answers this many seconds after it boots "
                         "(default 0)")
    ap.add_argument("--agent-timeout", type=float, default=3.0,
                    help="how long an agent request waits for an agent that does not answer "
                         "before 'QEMU guest agent is not running' (default 3, QMP's timeout)")
    ap.add_argument("--token", action="append",
                    help="API token USER@REALM!TOKENID=SECRET; repeatable "
                         f"(default {DEFAULT_TOKEN})")
    ap.add_argument("--user", default="root@pam", help="ticket login user (default root@pam)")
    ap.add_argument("--password", default="secret", help="ticket login password (default secret)")
    ap.add_argument("--auth-delay", type=float, default=3.0,
                    help="seconds every 401 is delayed, like PVE (default 3)")
    ap.add_argument("--task-seconds", type=float, default=0.5,
                    help="how long a lifecycle task runs (default 0.5)")
    ap.add_argument("--ticket-lifetime", type=float, default=7200.0,
                    help="ticket validity in seconds (default 7200)")
    ap.add_argument("--lock-timeout", type=float, default=10.0,
                    help="how long a worker waits for a CT's config lock (default 10, as PVE)")
    ap.add_argument("--resources-lag", type=float, default=0.0,
                    help="pvestatd period: every node publishes its guests' status every S "
                         "seconds (staggered); /cluster/resources shows the last published "
                         "data (default 0: live)")
    ap.add_argument("--stats-expire", type=float,
                    help="guest data older than this is dropped (status unknown), e.g. for a "
                         "node that went offline (default 300 with --resources-lag, else 0)")
    ap.add_argument("--quiet", action="store_true", help="no request log on stderr")
    args = ap.parse_args(argv)
    args.nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    if not args.nodes:
        ap.error("--nodes needs at least one name")
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")
    if "@" not in args.user:
        ap.error("--user must be USER@REALM")
    if not 0.0 <= args.stopped_fraction <= 1.0:
        ap.error("--stopped-fraction must be between 0 and 1")
    for name in ("cts", "vms", "vms_paused", "vms_stopped", "vm_templates", "vms_without_agent"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.vms_paused + args.vms_stopped + args.vm_templates > args.vms:
        ap.error("--vms-paused + --vms-stopped + --vm-templates exceed --vms")
    if args.vms_without_agent > args.vms:
        ap.error("--vms-without-agent exceeds --vms")
    for name in ("ip_delay", "agent_delay", "agent_timeout", "resources_lag", "auth_delay"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    for tok in args.token or []:
        try:
            parse_token(tok)
        except ValueError as e:
            ap.error(str(e))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    state = State(args)
    tmpdir = None
    ssl_ctx = None
    if not args.http:
        cert, key = args.cert, args.key
        if not cert:
            tmpdir = tempfile.mkdtemp(prefix="pve-simulator-")
            cert, key = make_cert(tmpdir)
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(cert, key)
        if args.ca_out:
            shutil.copyfile(cert, args.ca_out)
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    server = SimServer((args.listen, args.port), family, args, state, ssl_ctx)
    port = server.server_address[1]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(args.listen, args.listen)
    if ":" in host:
        host = f"[{host}]"
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tokens = ", ".join(f"{tid}={secret}" for tid, (secret, _) in state.tokens.items())
    vms = len(state.guests) - len(state.cts)
    sys.stderr.write(f"pve-simulator: {len(state.cts)} CTs, {vms} VMs on {','.join(args.nodes)}; "
                     f"API token {tokens}; login {args.user} / {args.password}\n")
    print(f"pve-simulator listening on {'http' if args.http else 'https'}://{host}:{port}",
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
