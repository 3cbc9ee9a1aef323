#!/usr/bin/env python3
"""`make bench`: measures idlewatcher-bridge on real components and prints one table.

Runs (a copy of) the release binary against the real dockerd (/var/run/docker.sock), a
mosquitto of its own on a free loopback port, and the Proxmox VE simulator. A whole run writes
bench/results.json, docs/performance-latency.png and the "latest run" section of
docs/performance.md (commit-able); everything else goes to bench/out/<run>/ (scratch: the
configs, every process's log, the subscriber's and the floor's records, samples.json).

A harness, not a test: it exits non-zero only if the harness itself fails. Each figure is
printed beside its target and whether the target is met. Containers are named
iwbench-<random>-…, labelled iwbench.run=<that>, and removed at the end (also on failure).

Environment:
  BENCH_QUICK=1           Proxmox run of 60 s instead of 300 s
  BENCH_ROUNDS=N          rounds of latency / command / burst (default 3)
  BENCH_EVENTS=N          pause+unpause events per latency round (default 200)
  BENCH_COMMANDS=N        commands per action per round (default 100)
  BENCH_CONTAINERS=N      containers watched, and per burst (default 200)
  BENCH_STARTUPS=N        fresh processes for the start-up figure (default 9)
  BENCH_IDLE_SECONDS=S    idle CPU window (default 60)
  BENCH_PVE_SECONDS=S     Proxmox polling window (default 300, 60 with BENCH_QUICK)
  BENCH_PVE_CTS=N         simulated CTs (default 1000)
  BENCH_BROKER_NODELAY=0  run the harness's broker with mosquitto's default set_tcp_nodelay false
  BENCH_COMMAND_QOS=0     publish commands with QoS 0 (default 1)
  BENCH_ONLY=a,b          only these parts: startup,memory,idle,latency,command,burst,proxmox
                          (such a partial run stays in bench/out unless BENCH_PUBLISH=1)
  BENCH_BIN=path          the binary (default .build/release/idlewatcher-bridge)
"""

import calendar
import concurrent.futures as cf
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from dockerapi import Docker, DockerError, follow_events  # noqa: E402
from mqttlite import MQTT, record  # noqa: E402

IMAGE = "idlewatcher-test/busybox:latest"
KNOWN_ACTIONS = {"create", "start", "restart", "pause", "unpause", "kill", "stop", "die", "destroy", "oom", "rename",
                 "health_status"}


def env_int(name, default):
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


QUICK = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0", "no", "false")
ROUNDS = env_int("BENCH_ROUNDS", 3)
EVENTS = env_int("BENCH_EVENTS", 200)
COMMANDS = env_int("BENCH_COMMANDS", 100)
CONTAINERS = env_int("BENCH_CONTAINERS", 200)
STARTUPS = env_int("BENCH_STARTUPS", 9)
IDLE_SECONDS = env_int("BENCH_IDLE_SECONDS", 60)
PVE_SECONDS = env_int("BENCH_PVE_SECONDS", 60 if QUICK else 300)
PVE_CTS = env_int("BENCH_PVE_CTS", 1000)
ONLY = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build/release/idlewatcher-bridge"))

BIN_RUN = BIN  # the copy the bench runs (set up in Bench.setup)
MiB = 1024 * 1024
# The harness's broker runs with `set_tcp_nodelay true`. With mosquitto's default (false) a
# request/response through the broker can wait for the peer's delayed ACK (~40 ms) whenever the
# broker wrote a small packet (a PUBACK) to that peer just before: a broker artefact that hits
# any client, so the command figure is measured without it, and once more (without a target)
# against a broker with the default setting. BENCH_BROKER_NODELAY=0 measures everything so.
BROKER_NODELAY = os.environ.get("BENCH_BROKER_NODELAY", "1").strip() not in ("0", "no", "false")
COMMAND_QOS = env_int("BENCH_COMMAND_QOS", 1)


def wanted(part):
    return not ONLY or part in ONLY


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# small helpers


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_until(fn, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def pct(values, p):
    """Percentile with linear interpolation between closest ranks."""
    if not values:
        return None
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    k = (len(v) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def rfc3339_ns(s):
    # 2026-11-26T21:55:00.123456Z
    base, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Private_Clean", "Private_Dirty"):
                    out[k] = int(v.split()[0]) * 1024
        out["USS"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    except OSError:
        pass
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads", "voluntary_ctxt_switches",
                     "nonvoluntary_ctxt_switches"):
                parts = v.split()
                out[k] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


class Cpu:
    """CPU time of a process: utime+stime from /proc/PID/stat (clock ticks, counts exited
    threads too) and, per thread, on-CPU ns from schedstat and context switches."""

    def __init__(self, pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        self.stat_s = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)
        self.ns, self.switches = {}, {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    self.ns[tid] = int(f.read().split()[0])
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    self.switches[tid] = sum(int(line.split()[1]) for line in f
                                             if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))
            except (FileNotFoundError, ProcessLookupError):
                pass

    @property
    def total_ns(self):
        return sum(self.ns.values())

    def since(self, earlier):
        """(stat seconds, schedstat ns, context switches) from `earlier` to this sample. Threads
        that ended in between are missing from the last two (a slight undercount)."""
        ns = sum(v - earlier.ns.get(t, 0) for t, v in self.ns.items())
        sw = sum(v - earlier.switches.get(t, 0) for t, v in self.switches.items())
        return self.stat_s - earlier.stat_s, ns, sw


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    return Cpu(pid)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ---------------------------------------------------------------------------------------------
# child processes


class Children:
    """Every process the harness starts, so that each is ended (by its own pid) on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, args, logfile, **kw):
        f = open(logfile, "w")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=15, sig=signal.SIGTERM):
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                self.stop(p, timeout=10)
            except Exception:  # noqa: BLE001
                pass


class Tail:
    """Reads a JSON-lines file a child process appends to."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.rest = ""
        self.records = []

    def poll(self):
        if self.f is None:
            if not os.path.exists(self.path):
                return []
            self.f = open(self.path)
        data = self.f.read()
        if not data:
            return []
        data = self.rest + data
        lines = data.split("\n")
        self.rest = lines.pop()
        new = [json.loads(line) for line in lines if line]
        self.records.extend(new)
        return new


class Subscriber(Tail):
    """The MQTT subscriber's records, indexed by topic."""

    def __init__(self, path):
        super().__init__(path)
        self.by_topic = {}

    def poll(self):
        new = super().poll()
        for r in new:
            if "topic" in r:
                self.by_topic.setdefault(r["topic"], []).append(r)
        return new

    def topic(self, t):
        self.poll()
        return self.by_topic.get(t, [])


class Floor(Tail):
    """The plain Docker events client's records, indexed by container name."""

    def __init__(self, path):
        super().__init__(path)
        self.by_name = {}

    def poll(self):
        new = super().poll()
        for r in new:
            e = r.get("e")
            if e:
                name = (e.get("Actor") or {}).get("Attributes", {}).get("name")
                if name:
                    self.by_name.setdefault(name, []).append(r)
        return new

    def events(self, name):
        self.poll()
        return self.by_name.get(name, [])


def yaml_config(path, c):
    # JSON is YAML: the config is written in flow style.
    with open(path, "w") as f:
        json.dump(c, f, indent=1)


class Bridge:
    def __init__(self, bench, name, docker_include=None, proxmox=None, docker=True, mqtt_port=None):
        self.bench = bench
        self.id = name
        self.base = name
        self.config = os.path.join(bench.dir, f"{name}.yaml")
        c = {
            "bridge": {"id": name, "health_file": os.path.join(bench.dir, f"{name}.health")},
            "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port or bench.mqtt_port}", "base_topic": self.base,
                     "client_id": f"idlewatcher-bridge-{name}"},
            "homeassistant": {"enabled": False},
        }
        if docker:
            c["docker"] = [{"url": "unix:///var/run/docker.sock", "include": docker_include or []}]
        if proxmox:
            c["proxmox"] = [proxmox]
        yaml_config(self.config, c)
        self.proc = None
        self.t_start = None

    def start(self):
        self.t_start = time.time_ns()
        self.proc = self.bench.children.start([BIN_RUN, "--config", self.config], os.path.join(self.bench.dir, f"{self.id}.log"))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def state_topic(self):
        return f"{self.base}/bridge/{self.id}/state"

    def wait_online(self, timeout=30):
        def online():
            self.check_alive()
            for r in self.bench.sub.topic(self.state_topic()):
                if r["p"] == "online":
                    return r["t"]
            return None

        return wait_until(online, timeout, f"{self.id} online")

    def statuses_out(self, runtime, ids, timeout=60):
        """Waits until a non-empty status of every id is out; returns the receive time of the last first one."""
        ids = list(ids)
        firsts = {}

        def done():
            self.check_alive()
            for i in ids:
                if i in firsts:
                    continue
                for r in self.bench.sub.topic(f"{self.base}/{runtime}/{i}/status"):
                    if r["p"]:
                        firsts[i] = r["t"]
                        break
            return len(firsts) == len(ids)

        wait_until(done, timeout, f"{len(ids)} statuses from {self.id} ({len(firsts)} seen)")
        return max(firsts.values())

    def check_alive(self):
        self.bench.check_helpers()
        if self.proc.poll() is not None:
            tail = open(os.path.join(self.bench.dir, f"{self.id}.log")).read()[-2000:]
            raise RuntimeError(f"bridge {self.id} exited with {self.proc.returncode}:\n{tail}")

    def stop(self):
        rc = self.bench.children.stop(self.proc, timeout=20)
        return rc

    def memory(self):
        return proc_status(self.pid)

    def cpu(self):
        return proc_cpu(self.pid)


# ---------------------------------------------------------------------------------------------
# the bench


class Bench:
    def __init__(self):
        self.run = "iwbench-%06x" % random.getrandbits(24)
        self.dir = os.path.join(HERE, "out", self.run)
        os.makedirs(self.dir, exist_ok=True)
        self.children = Children()
        self.docker = Docker()
        self.label = f"iwbench.run={self.run}"
        self.watched = [f"{self.run}-w{i:03d}" for i in range(CONTAINERS)]
        self.burst_names = [[f"{self.run}-b{r}-{i:03d}" for i in range(CONTAINERS)] for r in range(ROUNDS)]
        self.refs = {}
        self.results = {"figures": {}, "rounds": ROUNDS}
        self.samples = {}
        self.notes = []
        self.tls = threading.local()

    # -- setup / teardown

    def setup(self):
        log(f"run {self.run}; scratch output in {self.dir}")
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(f"{BIN} is missing: run `swift build -c release` (make bench does)")
        # A copy: others may rebuild .build/release while the bench runs.
        global BIN_RUN
        BIN_RUN = os.path.join(self.dir, "idlewatcher-bridge")
        shutil.copy2(BIN, BIN_RUN)
        self.mqtt_port = free_port()
        conf = os.path.join(self.dir, "mosquitto.conf")
        self.broker = self.start_broker(self.mqtt_port, "mosquitto", nodelay=BROKER_NODELAY)
        sub_path = os.path.join(self.dir, "subscriber.jsonl")
        self.sub_proc = self.children.start(
            [sys.executable, __file__, "--role", "sub", str(self.mqtt_port), sub_path],
            os.path.join(self.dir, "subscriber.log"))
        floor_path = os.path.join(self.dir, "floor.jsonl")
        self.floor_proc = self.children.start([sys.executable, __file__, "--role", "floor", floor_path],
                                              os.path.join(self.dir, "floor.log"))
        self.sub = Subscriber(sub_path)
        self.floor = Floor(floor_path)
        wait_until(lambda: self.sub.poll() or self.sub.records, 10, "the MQTT subscriber")
        wait_until(lambda: self.floor.poll() or self.floor.records, 10, "the Docker events client")
        self.ctl = MQTT("127.0.0.1", self.mqtt_port, f"iwbench-ctl-{self.run}")

    def start_broker(self, port, name, nodelay):
        conf = os.path.join(self.dir, f"{name}.conf")
        with open(conf, "w") as f:
            # The harness's subscriber must never lose a message: no limit on its queue.
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
            if nodelay:
                f.write("set_tcp_nodelay true\n")
        p = self.children.start(["mosquitto", "-c", conf], os.path.join(self.dir, f"{name}.log"))
        wait_until(lambda: self._port_open(port), 10, name)
        return p

    def check_helpers(self):
        for p, what in ((self.broker, "mosquitto"), (self.sub_proc, "the MQTT subscriber"),
                        (self.floor_proc, "the Docker events client")):
            if p.poll() is not None:
                raise RuntimeError(f"{what} exited with {p.returncode}; see {self.dir}")

    @staticmethod
    def _port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def dk(self):
        d = getattr(self.tls, "docker", None)
        if d is None:
            d = self.tls.docker = Docker()
        return d

    def create_watched(self):
        log(f"creating {len(self.watched)} containers {self.run}-w000…")

        def make(n):
            c = self.dk()
            r = c.create(n, {"iwbench.run": self.run}, IMAGE, ["/bin/sleep", "1000000000"])
            c.start(n)
            return n, r["Id"]

        with cf.ThreadPoolExecutor(8) as ex:
            for n, ref in ex.map(make, self.watched):
                self.refs[n] = ref

    def cleanup(self):
        try:
            d = Docker()
            left = d.list_by_label(self.label)
            if left:
                log(f"removing {len(left)} containers of this run")
            with cf.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda c: self.dk().remove(c["Id"]), left))
        except Exception as e:  # noqa: BLE001
            log(f"cleanup: {e}")
        try:
            self.ctl.close()
        except Exception:  # noqa: BLE001
            pass
        self.children.stop_all()
        if BIN_RUN != BIN:
            try:
                os.unlink(BIN_RUN)  # 18 MB of scratch per run
            except OSError:
                pass

    # -- figures

    def fig_memory_idle(self):
        """RSS with nothing watched (include names a container that does not exist)."""
        rows = []
        for k in range(3):
            b = Bridge(self, f"{self.run}-m{k}", docker_include=[f"{self.run}-nothing"]).start()
            b.wait_online()
            time.sleep(3)
            rows.append(b.memory())
            rc = b.stop()
            if rc != 0:
                self.notes.append(f"idle bridge {b.id} exited {rc}")
        self.results["figures"]["memory_idle_0"] = {
            "rss_mib": med([r["VmRSS"] / MiB for r in rows]),
            "hwm_mib": med([r["VmHWM"] / MiB for r in rows]),
            "rss_anon_mib": med([r["RssAnon"] / MiB for r in rows]),
            "pss_mib": med([r.get("Pss", 0) / MiB for r in rows]),
            "uss_mib": med([r.get("USS", 0) / MiB for r in rows]),
            "rss_file_mib": med([r["RssFile"] / MiB for r in rows]),
            "samples": rows,
        }

    def fig_startup(self):
        """Process start → `online` and every status out, with the watched containers."""
        rows = []
        for k in range(STARTUPS):
            b = Bridge(self, f"{self.run}-s{k}", docker_include=self.watched).start()
            t_online = b.wait_online()
            t_all = b.statuses_out("docker", self.watched)
            mem = b.memory()
            cpu = b.cpu()
            rows.append({"online_ms": (t_online - b.t_start) / 1e6, "all_ms": (t_all - b.t_start) / 1e6,
                         "hwm_mib": mem["VmHWM"] / MiB, "rss_mib": mem["VmRSS"] / MiB, "cpu_ms": cpu.total_ns / 1e6})
            rc = b.stop()
            if rc != 0:
                self.notes.append(f"start-up bridge {b.id} exited {rc}")
            time.sleep(0.3)
        per_round = [rows[i::ROUNDS] for i in range(min(ROUNDS, len(rows)))]
        self.results["figures"]["startup"] = {
            "containers": len(self.watched),
            "online_ms": med([r["online_ms"] for r in rows]),
            "all_ms": med([r["all_ms"] for r in rows]),
            "all_ms_spread": spread([r["all_ms"] for r in rows]),
            "cpu_ms": med([r["cpu_ms"] for r in rows]),
            "online_ms_spread": spread([r["online_ms"] for r in rows]),
            "runs": rows,
            "per_round_median_all_ms": [med([r["all_ms"] for r in g]) for g in per_round],
        }
        log("start-up: online %.0f ms, all %d statuses %.0f ms (median of %d)" % (
            self.results["figures"]["startup"]["online_ms"], len(self.watched),
            self.results["figures"]["startup"]["all_ms"], len(rows)))

    def start_main(self):
        self.main = Bridge(self, f"{self.run}-main", docker_include=self.watched + sum(self.burst_names, [])).start()
        self.main.wait_online()
        self.main.statuses_out("docker", self.watched)
        time.sleep(3)
        m = self.main.memory()
        self.results["figures"]["memory_watched"] = {
            "containers": len(self.watched), "rss_mib": m["VmRSS"] / MiB, "hwm_mib": m["VmHWM"] / MiB,
            "rss_anon_mib": m["RssAnon"] / MiB, "rss_file_mib": m["RssFile"] / MiB, "threads": m["Threads"],
            "pss_mib": m.get("Pss", 0) / MiB, "uss_mib": m.get("USS", 0) / MiB}
        log("memory with %d watched: RSS %.1f MiB (anon %.1f, file %.1f), HWM %.1f MiB" % (
            len(self.watched), m["VmRSS"] / MiB, m["RssAnon"] / MiB, m["RssFile"] / MiB, m["VmHWM"] / MiB))

    def fig_idle(self):
        log(f"idle CPU over {IDLE_SECONDS} s …")
        self.floor.poll()
        n0 = len(self.floor.records)
        t0 = time.monotonic()
        c0 = self.main.cpu()
        time.sleep(IDLE_SECONDS)
        c1 = self.main.cpu()
        wall = time.monotonic() - t0
        d_stat, d_ns, d_sw = c1.since(c0)
        self.floor.poll()
        foreign = [r for r in self.floor.records[n0:] if "e" in r]
        f = {
            "seconds": wall,
            "cpu_s_stat": d_stat,
            "cpu_ms_schedstat": d_ns / 1e6,
            "cpu_percent": 100 * d_ns / 1e9 / wall,
            "cpu_percent_stat": 100 * d_stat / wall,
            "wakeups_per_s": d_sw / wall,
            "docker_events_meanwhile": len(foreign),
        }
        self.results["figures"]["idle_cpu"] = f
        log("idle: %.3f s CPU (stat), %.1f ms (schedstat) = %.4f %% over %.0f s; %.1f wakeups/s; %d foreign Docker events" % (
            f["cpu_s_stat"], f["cpu_ms_schedstat"], f["cpu_percent"], wall, f["wakeups_per_s"], len(foreign)))

    # latency

    def latency_round(self, r):
        names = self.watched
        d = self.dk()
        rng = random.Random(r)
        t_begin = time.time_ns()
        pairs = EVENTS // 2
        for k in range(pairs):
            n = names[(k * 7 + r * 31) % len(names)]
            d.pause(n)
            time.sleep(rng.uniform(0.015, 0.03))
            d.unpause(n)
            time.sleep(rng.uniform(0.015, 0.03))
        t_end = time.time_ns()

        watched = set(names)

        def floor_events():
            out = {}
            self.floor.poll()
            for rec in self.floor.records:
                e = rec.get("e")
                if not e or e.get("Action") not in ("pause", "unpause"):
                    continue
                if not (t_begin <= e["timeNano"] <= t_end):
                    continue
                name = e["Actor"]["Attributes"].get("name")
                if name in watched:
                    out[(e["Actor"]["ID"], e["Action"], e["timeNano"] // 1000)] = (e["timeNano"], rec["t"], name)
            return out

        def bridge_events(keys):
            out = {}
            for (ref, action, us), (_, _, name) in keys.items():
                for rec in self.sub.topic(f"{self.main.base}/docker/{name}/event"):
                    p = json.loads(rec["p"])
                    if p["ref"] == ref and p["action"] == action and rfc3339_ns(p["time"]) // 1000 == us:
                        out[(ref, action, us)] = rec["t"]
                        break
            return out

        wait_until(lambda: len(floor_events()) >= 2 * pairs, 15, "the floor's events")
        fl = floor_events()
        got = {}

        def all_in():
            got.update(bridge_events({k: v for k, v in fl.items() if k not in got}))
            return len(got) == len(fl)

        try:
            wait_until(all_in, 20, "the bridge's events", interval=0.2)
        except TimeoutError:
            self.notes.append(f"latency round {r}: {len(fl) - len(got)} of {len(fl)} events not delivered by the bridge")
        floor_ms = [(t_recv - tn) / 1e6 for (tn, t_recv, _) in fl.values()]
        bridge_ms = [(got[k] - fl[k][0]) / 1e6 for k in fl if k in got]
        by_action = {a: [(got[k] - fl[k][0]) / 1e6 for k in fl if k in got and k[1] == a] for a in ("pause", "unpause")}
        return {"events": len(fl), "delivered": len(got), "floor_ms": floor_ms, "bridge_ms": bridge_ms,
                "by_action": by_action}

    # commands

    def command(self, name, action, rid, timeout=30, client=None, base=None, expect_ok=True):
        client = client or self.ctl
        topic = f"{base or self.main.base}/docker/{name}/command"
        t0 = time.time_ns()
        client.publish(topic, json.dumps({"action": action, "request_id": rid}), qos=COMMAND_QOS)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, tp, payload, _ in client.receive(timeout=1):
                if not tp.endswith("/reply"):
                    continue
                p = json.loads(payload)
                if p.get("request_id") == rid:
                    if expect_ok and not p.get("ok"):
                        raise RuntimeError(f"command {action} {name} failed: {p}")
                    return (t - t0) / 1e6, p
        raise TimeoutError(f"no reply to {action} of {name}")

    def command_round(self, r):
        if r == 0:
            self.ctl.subscribe([f"{self.main.base}/docker/+/reply", f"{self.run}-echo"], qos=1)
        d = self.dk()
        rng = random.Random(100 + r)
        out = {"bridge": {"pause": [], "unpause": []}, "direct": {"pause": [], "unpause": []},
               "direct_readback": {"pause": [], "unpause": []}, "bridge_reported_ms": {"pause": [], "unpause": []}}

        def direct(n, action, readback):
            t0 = time.time_ns()
            if readback:
                d.inspect(n)
            getattr(d, action)(n)
            if readback:
                d.inspect(n)
            return (time.time_ns() - t0) / 1e6

        gap = lambda: time.sleep(rng.uniform(0.015, 0.03))  # noqa: E731
        cpu0 = self.main.cpu()
        # Diagnostics without a target: `status` (one inspect) beside a direct inspect, and a
        # command for a container that does not exist (`not_found`: no Docker call at all), which
        # is what the broker hops and the bridge's own work cost.
        out["status_bridge"], out["status_direct"], out["not_found"], out["echo"] = [], [], [], []
        for k in range(max(10, COMMANDS // 2)):
            # the broker alone: publish to a topic this client subscribes to
            t0 = time.time_ns()
            self.ctl.publish(f"{self.run}-echo", str(k), qos=COMMAND_QOS)
            got = None
            while got is None:
                for t, tp, payload, _ in self.ctl.receive(timeout=5):
                    if tp == f"{self.run}-echo" and payload == str(k).encode():
                        got = t
            out["echo"].append((got - t0) / 1e6)
            gap()
            n = self.watched[(k * 5 + r) % len(self.watched)]
            out["status_bridge"].append(self.command(n, "status", f"{self.run}-{r}-{k}-status")[0])
            gap()
            t0 = time.time_ns()
            d.inspect(n)
            out["status_direct"].append((time.time_ns() - t0) / 1e6)
            gap()
            out["not_found"].append(self.command(f"{self.run}-nosuch", "status", f"{self.run}-{r}-{k}-nf",
                                                 expect_ok=False)[0])
            gap()
        for k in range(COMMANDS):
            n = self.watched[(k * 11 + r * 17) % len(self.watched)]
            order = ["bridge", "direct", "direct_readback"]
            rng.shuffle(order)
            for how in order:
                for action in ("pause", "unpause"):
                    if how == "bridge":
                        ms, p = self.command(n, action, f"{self.run}-{r}-{k}-{action}")
                        out["bridge"][action].append(ms)
                        out["bridge_reported_ms"][action].append(p.get("duration_ms"))
                    else:
                        out[how][action].append(direct(n, action, how == "direct_readback"))
                    gap()
        # The bridge's CPU for the whole round (its commands, and the events of every pause and
        # unpause, direct ones included), per pause/unpause it saw.
        ops = sum(len(out[h][a]) for h in ("bridge", "direct", "direct_readback") for a in ("pause", "unpause"))
        out["cpu_ms_per_operation"] = self.main.cpu().since(cpu0)[1] / 1e6 / ops
        return out

    def fig_command_default_broker(self):
        """The command round trip once more through a mosquitto with its default set_tcp_nodelay false."""
        port = free_port()
        broker = self.start_broker(port, "mosquitto-default", nodelay=False)
        b = Bridge(self, f"{self.run}-dflt", docker_include=self.watched, mqtt_port=port)
        ctl = MQTT("127.0.0.1", port, f"iwbench-ctl2-{self.run}")
        ctl.subscribe([b.state_topic(), f"{b.base}/docker/+/reply"], qos=1)
        b.start()
        deadline = time.monotonic() + 30
        online = False
        while not online and time.monotonic() < deadline:
            b.check_alive()
            online = any(tp == b.state_topic() and p == b"online" for _, tp, p, _ in ctl.receive(timeout=0.5))
        if not online:
            raise RuntimeError("the bridge on the default-config broker did not come online")
        time.sleep(2)
        rng = random.Random(7)
        out = {"pause": [], "unpause": []}
        n_cmds = max(10, COMMANDS // 2)
        for k in range(n_cmds):
            n = self.watched[(k * 13) % len(self.watched)]
            for action in ("pause", "unpause"):
                ms, _ = self.command(n, action, f"{self.run}-d-{k}-{action}", client=ctl, base=b.base)
                out[action].append(ms)
                time.sleep(rng.uniform(0.015, 0.03))
        ctl.close()
        b.stop()
        self.children.stop(broker)
        self.results["figures"]["command_default_broker"] = {
            "commands_per_action": n_cmds, "qos": COMMAND_QOS,
            **{f"{a}_p50": pct(v, 50) for a, v in out.items()}, **{f"{a}_p99": pct(v, 99) for a, v in out.items()}}
        self.samples["command_default_broker"] = out
        log("commands through a default-config mosquitto: pause p50 %.2f, unpause p50 %.2f ms" % (
            pct(out["pause"], 50), pct(out["unpause"], 50)))

    # burst

    def burst_round(self, r):
        names = self.burst_names[r]
        base = self.main.base
        errors = []

        def life(n):
            try:
                c = self.dk()
                c.create(n, {"iwbench.run": self.run}, IMAGE, ["/bin/sleep", "1000000000"])
                c.start(n)
                c.stop(n, 0)
                c.remove(n)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{n}: {e}")

        mem_before = self.main.memory()
        cpu0 = self.main.cpu()
        t0 = time.time_ns()
        with cf.ThreadPoolExecutor(16) as ex:
            list(ex.map(life, names))
        t_api = time.time_ns()

        def floor_seq(n):
            return [x for x in self.floor.events(n) if x["e"].get("Action") in KNOWN_ACTIONS]

        def bridge_seq(n):
            return self.sub.topic(f"{base}/docker/{n}/event")

        def docker_done():
            self.check_helpers()
            return all((f := floor_seq(n)) and f[-1]["e"]["Action"] == "destroy" for n in names)

        progress = {"count": -1, "at": time.monotonic()}

        def drained():
            self.main.check_alive()
            count = sum(len(bridge_seq(n)) for n in names)
            if count != progress["count"]:
                progress.update(count=count, at=time.monotonic())
            if all(len(bridge_seq(n)) >= len(floor_seq(n)) for n in names):
                return "done"
            if time.monotonic() - progress["at"] > 10:
                return "stalled"  # nothing new for 10 s: what is missing will not come
            return None

        wait_until(docker_done, 60, "Docker's own events of the burst", interval=0.25)
        timed_out = wait_until(drained, 300, "the burst's events", interval=0.25) != "done"
        time.sleep(1)  # anything late or extra
        self.sub.poll()
        self.floor.poll()
        cpu1 = self.main.cpu()
        floor_total = bridge_total = delivered = 0
        in_order = 0
        cleared = 0
        lat = []
        last_floor = last_bridge = 0
        mismatches = []
        for n in names:
            f = floor_seq(n)
            b = bridge_seq(n)
            fa = [x["e"]["Action"] for x in f]
            ba = [json.loads(x["p"])["action"] for x in b]
            floor_total += len(fa)
            bridge_total += len(ba)
            # delivered: every floor event has a bridge message with the same action and time
            fkeys = [(x["e"]["Action"], x["e"]["timeNano"] // 1000) for x in f]
            bkeys = [(p["action"], rfc3339_ns(p["time"]) // 1000) for p in (json.loads(x["p"]) for x in b)]
            delivered += sum(1 for k in fkeys if k in set(bkeys))
            if fkeys == bkeys:
                in_order += 1
            elif len(mismatches) < 5:
                mismatches.append({"name": n, "docker": fa, "bridge": ba})
            for x, y in zip(f, b):
                lat.append((y["t"] - x["e"]["timeNano"]) / 1e6)
            if f:
                last_floor = max(last_floor, f[-1]["t"])
            if b:
                last_bridge = max(last_bridge, b[-1]["t"])
            st = self.sub.topic(f"{base}/docker/{n}/status")
            if st and st[-1]["p"] == "":
                cleared += 1
        time.sleep(2)
        mem_after = self.main.memory()
        res = {
            "containers": len(names), "api_errors": errors[:5], "api_error_count": len(errors),
            "docker_events": floor_total, "bridge_events": bridge_total, "delivered": delivered,
            "containers_in_order": in_order, "statuses_cleared": cleared, "timed_out": timed_out,
            "api_seconds": (t_api - t0) / 1e9,
            "drain_after_docker_ms": (last_bridge - last_floor) / 1e6 if last_bridge and last_floor else None,
            "total_seconds": (last_bridge - t0) / 1e9 if last_bridge else None,
            "latency_p50_ms": pct(lat, 50), "latency_p99_ms": pct(lat, 99), "latency_max_ms": max(lat) if lat else None,
            "cpu_s": cpu1.since(cpu0)[1] / 1e9, "cpu_s_stat": cpu1.since(cpu0)[0],
            "rss_before_mib": mem_before["VmRSS"] / MiB, "rss_after_mib": mem_after["VmRSS"] / MiB,
            "anon_before_mib": mem_before["RssAnon"] / MiB, "anon_after_mib": mem_after["RssAnon"] / MiB,
            "hwm_after_mib": mem_after["VmHWM"] / MiB, "mismatches": mismatches,
        }
        log("burst %d: %d/%d events delivered, %d/%d containers in order, %d cleared, drain %.0f ms after Docker's last; "
            "RSS %.1f → %.1f MiB" % (r, delivered, floor_total, in_order, len(names), cleared,
                                     res["drain_after_docker_ms"] or -1, res["rss_before_mib"], res["rss_after_mib"]))
        return res

    # proxmox

    def fig_proxmox(self):
        f = {"cts": PVE_CTS, "poll_interval_s": 2, "seconds": PVE_SECONDS}
        self.results["figures"]["proxmox"] = f
        secret = "%08x-bench-%08x" % (random.getrandbits(32), random.getrandbits(32))
        port_file = os.path.join(self.dir, "pve.port")
        ca = os.path.join(self.dir, "pve-ca.pem")
        secret_file = os.path.join(self.dir, "pve.secret")
        with open(secret_file, "w") as fh:
            fh.write(secret + "\n")
        os.chmod(secret_file, 0o600)
        sim = self.children.start(
            [sys.executable, os.path.join(ROOT, "tools/pve-simulator/pve_simulator.py"), "--cts", str(PVE_CTS),
             "--nodes", "pve1,pve2", "--port", "0", "--port-file", port_file, "--ca-out", ca, "--quiet",
             "--token", f"root@pam!bench={secret}", "--task-seconds", "0.5"],
            os.path.join(self.dir, "pve-simulator.log"))
        wait_until(lambda: os.path.exists(port_file) and os.path.exists(ca), 30, "the Proxmox simulator")
        port = int(open(port_file).read().strip())
        sim_url = f"https://127.0.0.1:{port}"
        import ssl

        ctx = ssl.create_default_context(cafile=ca)

        def sim_call(method, path, body=None):
            req = urllib.request.Request(sim_url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                return json.loads(r.read() or b"null")

        b = Bridge(self, f"{self.run}-pve", docker=False, proxmox={
            "url": sim_url, "token_id": "root@pam!bench", "token_secret_file": secret_file, "ca_file": ca,
            "poll_interval": "2s"}).start()
        vmids = [str(100 + i) for i in range(PVE_CTS)]
        try:
            b.wait_online(30)
            t_all = b.statuses_out("proxmox", vmids, timeout=120)
            f["startup_all_statuses_ms"] = (t_all - b.t_start) / 1e6
            f["startup_cpu_ms"] = b.cpu().total_ns / 1e6
            startup_requests = sim_call("GET", "/_sim/stats")
            f["startup_requests"] = startup_requests.get("requests")
        except Exception as e:  # noqa: BLE001
            f["not_measured"] = f"the Proxmox provider did not come up: {str(e).splitlines()[0]}"
            f["bridge_log_tail"] = open(os.path.join(self.dir, f"{b.id}.log")).read()[-1500:]
            log("proxmox: NOT MEASURED: " + f["not_measured"])
            b.stop()
            self.children.stop(sim)
            return
        time.sleep(3)
        sim_call("POST", "/_sim/stats/reset", {})
        # A few outside changes, spread over the window: stop three CTs, start them again.
        changed = [str(100 + k) for k in (17, 503, 900)]
        changes = [(v, "stopped") for v in changed] + [(v, "running") for v in changed]
        when = [PVE_SECONDS * (i + 1) / (len(changes) + 1) for i in range(len(changes))]
        log(f"proxmox: {PVE_CTS} CTs, poll_interval 2s, {PVE_SECONDS} s, {len(changes)} outside changes …")
        c0 = b.cpu()
        s0 = proc_cpu(sim.pid)
        t0 = time.monotonic()
        t0_ns = time.time_ns()
        done = []
        for (vmid, status), at in zip(changes, when):
            time.sleep(max(0, t0 + at - time.monotonic()))
            sim_call("POST", f"/_sim/ct/{vmid}", {"status": status})
            done.append((vmid, status, time.time_ns()))
        time.sleep(max(0, t0 + PVE_SECONDS - time.monotonic()))
        wall = time.monotonic() - t0
        c1 = b.cpu()
        s1 = proc_cpu(sim.pid)
        stats = sim_call("GET", "/_sim/stats")
        reqs = stats.get("requests", {})
        resources = sum(v for k, v in reqs.items() if k.startswith("GET /cluster/resources"))
        current = sum(v for k, v in reqs.items() if k.endswith("/status/current"))
        other = {k: v for k, v in reqs.items() if not k.startswith("GET /cluster/resources") and not k.endswith("/status/current")}
        # events the bridge published for the changes, and how long after the change
        seen = []
        for vmid, status, t_change in done:
            action = "stop" if status == "stopped" else "start"
            ev = [r for r in b.bench.sub.topic(f"{b.base}/proxmox/{vmid}/event")
                  if r["t"] >= t_change and json.loads(r["p"]).get("action") == action]
            seen.append((ev[0]["t"] - t_change) / 1e6 if ev else None)
        f.update({
            "seconds": wall, "requests": reqs, "cluster_resources": resources,
            "expected_cluster_resources": wall / 2, "status_current": current, "changed_cts": len(changes),
            "other_requests": other, "events_delivered": sum(1 for s in seen if s is not None),
            "changes": [(v, st) for v, st, _ in done],
            "event_delay_ms": seen, "event_delay_median_ms": med(seen),
            "cpu_s": c1.since(c0)[1] / 1e9, "cpu_percent": 100 * c1.since(c0)[1] / 1e9 / wall,
            "cpu_percent_stat": 100 * c1.since(c0)[0] / wall,
            "simulator_cpu_percent": 100 * s1.since(s0)[0] / wall,
            "rss_mib": b.memory()["VmRSS"] / MiB, "hwm_mib": b.memory()["VmHWM"] / MiB,
            "since_ns": t0_ns,
        })
        log("proxmox: %d /cluster/resources (expected ~%.0f), %d status/current for %d changes, other %s; bridge CPU %.2f %%" % (
            resources, wall / 2, current, len(changes), other, f["cpu_percent"]))
        rc = b.stop()
        if rc != 0:
            self.notes.append(f"Proxmox bridge exited {rc}")
        self.children.stop(sim)

    # -- the whole run

    def run_all(self):
        self.results["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results["machine"] = machine()
        self.results["load_before"] = loadavg()
        self.setup()
        docker_parts = {"startup", "memory", "idle", "latency", "command", "burst"}
        if any(wanted(p) for p in docker_parts):
            if wanted("memory"):
                self.fig_memory_idle()
            self.create_watched()
            if wanted("startup"):
                self.fig_startup()
            self.start_main()
            if wanted("idle"):
                self.fig_idle()
            lat_rounds, cmd_rounds, burst_rounds = [], [], []
            for r in range(ROUNDS):
                log(f"round {r + 1}/{ROUNDS}; load {loadavg()}")
                if wanted("latency"):
                    lat_rounds.append(self.latency_round(r))
                    lr = lat_rounds[-1]
                    log("latency: bridge p50 %.2f p99 %.2f ms; floor p50 %.2f p99 %.2f ms (%d/%d events)" % (
                        pct(lr["bridge_ms"], 50), pct(lr["bridge_ms"], 99), pct(lr["floor_ms"], 50),
                        pct(lr["floor_ms"], 99), lr["delivered"], lr["events"]))
                if wanted("command"):
                    cmd_rounds.append(self.command_round(r))
                    c = cmd_rounds[-1]
                    log("commands: bridge pause p50 %.2f, unpause p50 %.2f; direct %.2f / %.2f; direct+read-back %.2f / %.2f ms" % (
                        pct(c["bridge"]["pause"], 50), pct(c["bridge"]["unpause"], 50), pct(c["direct"]["pause"], 50),
                        pct(c["direct"]["unpause"], 50), pct(c["direct_readback"]["pause"], 50),
                        pct(c["direct_readback"]["unpause"], 50)))
                if wanted("burst"):
                    burst_rounds.append(self.burst_round(r))
            if wanted("command") and BROKER_NODELAY:
                self.fig_command_default_broker()
            self.summarize_docker(lat_rounds, cmd_rounds, burst_rounds)
            m = self.main.memory()
            self.results["figures"].setdefault("memory_watched", {})["rss_end_mib"] = m["VmRSS"] / MiB
            self.results["figures"]["memory_watched"]["hwm_end_mib"] = m["VmHWM"] / MiB
            rc = self.main.stop()
            offline = [r for r in self.sub.topic(self.main.state_topic()) if r["p"] == "offline"]
            self.results["main_bridge_exit"] = {"code": rc, "offline_published": bool(offline)}
            if rc != 0:
                self.notes.append(f"the main bridge exited {rc} on SIGTERM")
        if wanted("proxmox"):
            try:
                self.fig_proxmox()
            except Exception as e:  # noqa: BLE001
                self.results["figures"]["proxmox"]["not_measured"] = f"harness error: {e}"
                traceback.print_exc()
        self.results["load_after"] = loadavg()
        self.results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results["notes"] = self.notes

    def summarize_docker(self, lat_rounds, cmd_rounds, burst_rounds):
        F = self.results["figures"]
        if lat_rounds:
            per = [{"bridge_p50": pct(l["bridge_ms"], 50), "bridge_p99": pct(l["bridge_ms"], 99),
                    "floor_p50": pct(l["floor_ms"], 50), "floor_p99": pct(l["floor_ms"], 99),
                    "events": l["events"], "delivered": l["delivered"],
                    "pause_p50": pct(l["by_action"]["pause"], 50), "unpause_p50": pct(l["by_action"]["unpause"], 50)}
                   for l in lat_rounds]
            allb = sum((l["bridge_ms"] for l in lat_rounds), [])
            allf = sum((l["floor_ms"] for l in lat_rounds), [])
            F["event_latency"] = {
                "events_per_round": EVENTS, "rounds": per,
                "bridge_p50": med([p["bridge_p50"] for p in per]), "bridge_p99": med([p["bridge_p99"] for p in per]),
                "floor_p50": med([p["floor_p50"] for p in per]), "floor_p99": med([p["floor_p99"] for p in per]),
                "bridge_p50_spread": spread([p["bridge_p50"] for p in per]),
                "bridge_p99_spread": spread([p["bridge_p99"] for p in per]),
                "floor_p50_spread": spread([p["floor_p50"] for p in per]),
                "floor_p99_spread": spread([p["floor_p99"] for p in per]),
                "added_p50": med([p["bridge_p50"] - p["floor_p50"] for p in per]),
                "added_p99": med([p["bridge_p99"] - p["floor_p99"] for p in per]),
                "pooled": {"bridge_p50": pct(allb, 50), "bridge_p99": pct(allb, 99), "bridge_max": max(allb) if allb else None,
                           "floor_p50": pct(allf, 50), "floor_p99": pct(allf, 99), "floor_max": max(allf) if allf else None,
                           "n": len(allb)},
            }
            self.samples["latency_bridge_ms"] = allb
            self.samples["latency_floor_ms"] = allf
        if cmd_rounds:
            out = {"commands_per_action_per_round": COMMANDS}
            for action in ("pause", "unpause"):
                per = [{"bridge_p50": pct(c["bridge"][action], 50), "bridge_p99": pct(c["bridge"][action], 99),
                        "direct_p50": pct(c["direct"][action], 50), "direct_p99": pct(c["direct"][action], 99),
                        "readback_p50": pct(c["direct_readback"][action], 50),
                        "readback_p99": pct(c["direct_readback"][action], 99),
                        "bridge_reported_p50": pct([x for x in c["bridge_reported_ms"][action] if x is not None], 50)}
                       for c in cmd_rounds]
                out[action] = {
                    "rounds": per,
                    **{k: med([p[k] for p in per]) for k in per[0]},
                    **{k + "_spread": spread([p[k] for p in per]) for k in ("bridge_p50", "bridge_p99", "direct_p50")},
                    "added_p50": med([p["bridge_p50"] - p["direct_p50"] for p in per]),
                    "added_p50_vs_readback": med([p["bridge_p50"] - p["readback_p50"] for p in per]),
                }
            out["cpu_ms_per_operation"] = med([c["cpu_ms_per_operation"] for c in cmd_rounds])
            for key in ("status_bridge", "status_direct", "not_found", "echo"):
                out[key + "_p50"] = med([pct(c[key], 50) for c in cmd_rounds])
                out[key + "_p99"] = med([pct(c[key], 99) for c in cmd_rounds])
            for action in ("pause", "unpause"):
                self.samples[f"command_{action}_bridge_ms"] = sum((c["bridge"][action] for c in cmd_rounds), [])
                self.samples[f"command_{action}_direct_ms"] = sum((c["direct"][action] for c in cmd_rounds), [])
                self.samples[f"command_{action}_readback_ms"] = sum((c["direct_readback"][action] for c in cmd_rounds), [])
            F["command_round_trip"] = out
        if burst_rounds:
            F["burst"] = {
                "rounds": burst_rounds,
                "all_delivered": all(b["delivered"] == b["docker_events"] and b["bridge_events"] == b["docker_events"]
                                     for b in burst_rounds),
                "all_in_order": all(b["containers_in_order"] == b["containers"] for b in burst_rounds),
                "all_cleared": all(b["statuses_cleared"] == b["containers"] for b in burst_rounds),
                "drain_after_docker_ms": med([b["drain_after_docker_ms"] for b in burst_rounds]),
                "drain_after_docker_ms_spread": spread([b["drain_after_docker_ms"] for b in burst_rounds]),
                "total_seconds": med([b["total_seconds"] for b in burst_rounds]),
                "latency_p50_ms": med([b["latency_p50_ms"] for b in burst_rounds]),
                "latency_p99_ms": med([b["latency_p99_ms"] for b in burst_rounds]),
                "rss_after_mib": [b["rss_after_mib"] for b in burst_rounds],
                "anon_after_mib": [b["anon_after_mib"] for b in burst_rounds],
                "rss_before_first_mib": burst_rounds[0]["rss_before_mib"],
            }


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return None

    model = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    try:
        dv = Docker().version()
        docker_v = f"{dv.get('Version')} (Engine API {dv.get('ApiVersion')})"
    except Exception:  # noqa: BLE001
        docker_v = None
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.splitlines()
    commit = first(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "Sources"], capture_output=True,
                           text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(), "os": first(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
        "docker": docker_v, "mosquitto": mosq[0] if mosq else None, "swift": first(["swift", "--version"]),
        "curl": first(["curl", "--version"]), "python": platform.python_version(),
        "commit": f"{commit}{' + uncommitted changes in Sources/' if dirty else ''}",
    }


# ---------------------------------------------------------------------------------------------
# the table


def fmt(v, unit="", nd=1):
    if v is None:
        return "—"
    return f"{v:.{nd}f}{unit}"


def fmt_spread(s, nd=1):
    if not s or s[0] is None:
        return ""
    return f" [{s[0]:.{nd}f}–{s[1]:.{nd}f}]"


def table(results):
    F = results["figures"]
    rows = []  # figure, measured, reference, target, met

    def met(b):
        return "—" if b is None else ("yes" if b else "NO")

    if "event_latency" in F:
        L = F["event_latency"]
        rows.append(("event latency p50", fmt(L["bridge_p50"], " ms", 2) + fmt_spread(L["bridge_p50_spread"], 2)
                     + f", +{L['added_p50']:.2f} over floor",
                     "floor " + fmt(L["floor_p50"], " ms", 2) + fmt_spread(L["floor_p50_spread"], 2),
                     "≤ floor + 1 ms", met(L["added_p50"] <= 1.0)))
        rows.append(("event latency p99", fmt(L["bridge_p99"], " ms", 2) + fmt_spread(L["bridge_p99_spread"], 2)
                     + f", +{L['added_p99']:.2f} over floor",
                     "floor " + fmt(L["floor_p99"], " ms", 2) + fmt_spread(L["floor_p99_spread"], 2),
                     "≤ floor + 5 ms", met(L["added_p99"] <= 5.0)))
    if "command_round_trip" in F:
        for action in ("pause", "unpause"):
            C = F["command_round_trip"][action]
            rows.append((f"command {action} p50 / p99",
                         fmt(C["bridge_p50"], "", 2) + " / " + fmt(C["bridge_p99"], " ms", 2) + fmt_spread(C["bridge_p50_spread"], 2)
                         + f", p50 +{C['added_p50']:.2f} over direct, +{C['added_p50_vs_readback']:.2f} over read-back",
                         "direct " + fmt(C["direct_p50"], "", 2) + " / " + fmt(C["direct_p99"], " ms", 2)
                         + f"; direct with status read before and after {fmt(C['readback_p50'], ' ms', 2)}",
                         "p50 ≤ direct + 2 ms", met(C["added_p50"] <= 2.0)))
    if "command_round_trip" in F:
        C = F["command_round_trip"]
        rows.append(("command status p50 (diagnostic)", f"{fmt(C['status_bridge_p50'], ' ms', 2)}",
                     f"direct inspect {fmt(C['status_direct_p50'], ' ms', 2)}; not_found (no Docker call) "
                     f"{fmt(C['not_found_p50'], ' ms', 2)}; broker echo {fmt(C['echo_p50'], ' ms', 2)}", "—", "—"))
    if "command_default_broker" in F:
        D = F["command_default_broker"]
        rows.append(("command p50, default mosquitto", f"pause {fmt(D['pause_p50'], '', 2)}, unpause {fmt(D['unpause_p50'], ' ms', 2)}",
                     "broker with set_tcp_nodelay false (its default): Nagle + delayed ACK", "—", "—"))
    if "burst" in F:
        B = F["burst"]
        n = sum(b["containers"] for b in B["rounds"])
        ev = sum(b["docker_events"] for b in B["rounds"])
        dl = sum(b["delivered"] for b in B["rounds"])
        io = sum(b["containers_in_order"] for b in B["rounds"])
        rows.append((f"burst ({B['rounds'][0]['containers']} containers × {len(B['rounds'])})",
                     f"{dl}/{ev} events, {io}/{n} in order; drain {fmt(B['drain_after_docker_ms'], ' ms', 0)}"
                     + fmt_spread(B["drain_after_docker_ms_spread"], 0) + " after Docker's last",
                     f"Docker took {fmt(med([b['api_seconds'] for b in B['rounds']]), ' s', 1)}",
                     "all delivered, in order", met(B["all_delivered"] and B["all_in_order"])))
    if "memory_idle_0" in F or "memory_watched" in F:
        M0 = F.get("memory_idle_0", {})
        MW = F.get("memory_watched", {})
        if M0:
            rows.append(("memory idle (0 watched)", f"RSS {fmt(M0['rss_mib'], ' MiB')} (HWM {fmt(M0['hwm_mib'], ' MiB')})",
                         f"anon {fmt(M0['rss_anon_mib'], ' MiB')}, file-backed {fmt(M0['rss_file_mib'], ' MiB')}", "—", "—"))
        if MW:
            rows.append((f"memory ({MW.get('containers')} watched)",
                         f"RSS {fmt(MW.get('rss_mib'), ' MiB')} (HWM {fmt(MW.get('hwm_mib'), ' MiB')})",
                         f"anon {fmt(MW.get('rss_anon_mib'), ' MiB')}, file-backed {fmt(MW.get('rss_file_mib'), ' MiB')}",
                         "≤ 20 MiB", met(MW.get("hwm_mib", 1e9) <= 20.0)))
        if "burst" in F:
            B = F["burst"]
            rss = [B["rss_before_first_mib"]] + B["rss_after_mib"]
            growth = B["rss_after_mib"][-1] - B["rss_after_mib"][0] if len(B["rss_after_mib"]) > 1 else None
            rows.append(("memory after bursts", " → ".join(f"{x:.1f}" for x in rss) + " MiB RSS",
                         f"HWM {fmt(B['rounds'][-1]['hwm_after_mib'], ' MiB')}; growth from burst 1 to {len(B['rss_after_mib'])}: "
                         + fmt(growth, " MiB", 2),
                         "no growth", met(None if growth is None else growth <= 0.5)))
    if "idle_cpu" in F:
        I = F["idle_cpu"]
        rows.append((f"idle CPU ({I['seconds']:.0f} s)",
                     f"{I['cpu_s_stat']:.2f} s utime+stime; {I['cpu_ms_schedstat']:.1f} ms on CPU = {I['cpu_percent']:.3f} %",
                     f"{I['wakeups_per_s']:.1f} wakeups/s; {I['docker_events_meanwhile']} foreign Docker events",
                     "≈ 0, nothing polls", met(I["cpu_percent"] < 0.1)))
    if "proxmox" in F:
        P = F["proxmox"]
        if "not_measured" in P:
            rows.append((f"Proxmox polling ({P['cts']} CTs)", "not measured", P["not_measured"][:60],
                         "1 req/interval + 1 per changed CT", "—"))
        else:
            stops = sum(1 for c in P.get("changes", []) if c[1] == "stopped")
            polls_ok = abs(P["cluster_resources"] - P["expected_cluster_resources"]) <= 2
            per_ct_ok = P["status_current"] == P["changed_cts"]
            extra = sum(P["other_requests"].values())
            if polls_ok and per_ct_ok and not extra:
                verdict = "yes"
            elif polls_ok and per_ct_ok and set(P["other_requests"]) <= {"GET /nodes/{node}/tasks"} and extra <= stops:
                verdict = "no: +1 task list per stop"
            else:
                verdict = "NO"
            rows.append((f"Proxmox polling ({P['cts']} CTs, 2 s, {P['seconds']:.0f} s)",
                         f"{P['cluster_resources']} /cluster/resources, {P['status_current']} status/current, "
                         f"{extra} other; CPU {P['cpu_percent']:.2f} %",
                         f"expected {P['expected_cluster_resources']:.0f} + {P['changed_cts']} (changes); "
                         f"{P['events_delivered']}/{P['changed_cts']} events; simulator CPU {P['simulator_cpu_percent']:.1f} %",
                         "1 req/interval + 1 per changed CT", verdict))
    if "startup" in F:
        S = F["startup"]
        rows.append((f"start-up ({S['containers']} containers)",
                     f"{fmt(S['all_ms'], ' ms', 0)}{fmt_spread(S['all_ms_spread'], 0)} to all statuses",
                     f"online after {fmt(S['online_ms'], ' ms', 0)}{fmt_spread(S['online_ms_spread'], 0)}",
                     "≤ 200 ms", met(S["all_ms"] <= 200)))
    head = ("figure", "measured: median [min–max of the rounds]", "beside it", "target", "met")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines), rows


def update_docs(results, text):
    """Puts the latest table and the machine into docs/performance.md, between its markers."""
    path = os.path.join(ROOT, "docs", "performance.md")
    if not os.path.exists(path):
        return False
    doc = open(path).read()
    start, end = "<!-- bench:latest -->", "<!-- /bench:latest -->"
    if start not in doc or end not in doc:
        return False
    m = results["machine"]
    block = [start, "",
             f"Run `{results.get('run')}`, {results['started']} to {results['finished']}, commit {m['commit']}; "
             f"load average {results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after "
             "(a machine shared with other test runs: the numbers are noisy).", "",
             f"- {m['nproc']} × {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']} ({m['os']})",
             f"- Docker {m['docker']}; {m['mosquitto']}; {m['swift']}",
             f"- {m['curl']}; Python {m['python']}", "", text, ""]
    for n in results.get("notes", []):
        block.append(f"- note: {n}")
    block.append(end)
    doc = doc[:doc.index(start)] + "\n".join(block) + doc[doc.index(end) + len(end):]
    with open(path, "w") as f:
        f.write(doc)
    return True


# ---------------------------------------------------------------------------------------------


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--role":
        role = sys.argv[2]
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        if role == "sub":
            record("127.0.0.1", int(sys.argv[3]), ["#"], sys.argv[4], f"iwbench-sub-{os.getpid()}")
        elif role == "floor":
            follow_events(sys.argv[3])
        return 0

    bench = Bench()

    def on_signal(signum, _):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    failed = False
    try:
        bench.run_all()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        failed = True
    finally:
        bench.cleanup()
    if failed:
        log(f"the harness failed; partial results and logs in {bench.dir}")
        return 1

    text, rows = table(bench.results)
    bench.results["table"] = text
    bench.results["table_rows"] = [list(r) for r in rows]
    bench.results["run"] = bench.run
    bench.results["settings"] = {"quick": QUICK, "rounds": ROUNDS, "events": EVENTS, "commands": COMMANDS,
                                 "containers": CONTAINERS, "startups": STARTUPS, "idle_seconds": IDLE_SECONDS,
                                 "pve_seconds": PVE_SECONDS, "pve_cts": PVE_CTS, "only": sorted(ONLY),
                                 "broker_set_tcp_nodelay": BROKER_NODELAY, "command_qos": COMMAND_QOS}
    # A partial run (BENCH_ONLY) stays in bench/out: only a whole run is published.
    publish = not ONLY or os.environ.get("BENCH_PUBLISH", "") not in ("", "0")
    with open(os.path.join(bench.dir, "results.json"), "w") as f:
        json.dump(bench.results, f, indent=1, default=str)
        f.write("\n")
    with open(os.path.join(bench.dir, "samples.json"), "w") as f:
        json.dump(bench.samples, f)
    if publish:
        shutil.copy(os.path.join(bench.dir, "results.json"), os.path.join(HERE, "results.json"))
    if bench.samples.get("latency_bridge_ms"):
        from plot import plot

        png = os.path.join(bench.dir, "latency.png")
        how = plot(bench.samples, png)
        if publish:
            os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
            shutil.copy(png, os.path.join(ROOT, "docs", "performance-latency.png"))
            log(f"plot ({how}): docs/performance-latency.png")
    if publish and update_docs(bench.results, text):
        log("docs/performance.md: latest table updated")
    print()
    print(f"idlewatcher-bridge bench {bench.run} on {bench.results['machine']['nproc']} × {bench.results['machine']['cpu']}, "
          f"load {bench.results['load_before']} → {bench.results['load_after']} (a shared machine: numbers are noisy)")
    print(text)
    for n in bench.notes:
        print("note:", n)
    print(f"\nwrote {'bench/results.json' if publish else os.path.relpath(os.path.join(bench.dir, 'results.json'), ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
