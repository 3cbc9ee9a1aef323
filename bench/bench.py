#!/usr/bin/env python3
"""`make bench`: measures idlewatcher-bridge on real components and prints one table.

Runs (a copy of) the release binary against the real dockerd (/var/run/docker.sock), a
mosquitto of its own on a free loopback port, and the Proxmox VE simulator. A whole run writes
bench/results.json, docs/performance-latency.png and the "latest run" section of
docs/performance.md (commit-able); everything else goes to bench/out/<run>/ (scratch: the
configs, every process's log, the subscriber's and the floor's records, samples.json).

Each figure is printed beside its target and whether the target is met, and the run ends with
one line per target, met or not. Exit status: 0 when every target is met, 3 when one is not (or
could not be measured), 1 when the harness itself fails. Latency figures are percentiles over
every sample of every round (brackets: the smallest and largest per-round figure), and a sample
that never came (an event not delivered, a command not answered ok) counts as infinite.
Containers are named iwbench-<random>-…, labelled iwbench.run=<that>, and removed at the end
(also on failure).

Parts (BENCH_ONLY): startup, memory, idlecpu (the bridge's CPU with nothing happening), latency,
command (with `start` of a container created just before the command: the slow path), burst;
the idle policy (contract v1.1): idle (timer precision), touches (their cost, and no Engine API
request for one, counted by a proxy in front of dockerd), wake (wake → ready reply beside the
container's own start → healthy); proxmox.

Environment:
  BENCH_QUICK=1           Proxmox run of 60 s instead of 300 s, touch windows of 20 s instead of 60 s
  BENCH_ROUNDS=N          rounds of latency / command / burst (default 3)
  BENCH_EVENTS=N          pause+unpause events per latency round (default 200)
  BENCH_COMMANDS=N        commands per action per round (default 100)
  BENCH_CONTAINERS=N      containers watched, and per burst (default 200)
  BENCH_STARTUPS=N        fresh processes for the start-up figure (default 9)
  BENCH_IDLE_SECONDS=S    idle CPU window (default 60)
  BENCH_PVE_SECONDS=S     Proxmox polling window (default 300, 60 with BENCH_QUICK)
  BENCH_PVE_GUESTS=N      simulated guests, half CTs and half VMs (default 1000)
  BENCH_PVE_LAG=S         pvestatd's period: how stale /cluster/resources is (default 10, as PVE)
  BENCH_BROKER_NODELAY=0  run the harness's broker with mosquitto's default set_tcp_nodelay false
  BENCH_COMMAND_QOS=0     publish commands with QoS 0 (default 1)
  BENCH_SLOW_COMMANDS=N   slow-path `start` commands per round (default BENCH_COMMANDS / 5)
  BENCH_IDLE_CONTAINERS=N idle part: idle-managed containers (default BENCH_CONTAINERS)
  BENCH_IDLE_RATE=N       idle part: containers whose last activity comes per second (default 10)
  BENCH_IDLE_STAGGER=start idle part: that activity is the harness starting them (default touch: a last touch)
  BENCH_TOUCH_CONTAINERS=N touches part: idle-managed containers (default 5 × BENCH_CONTAINERS)
  BENCH_TOUCH_RATE=N      touches per second (default 100)
  BENCH_TOUCH_SECONDS=S   touch window, and the quiet window beside it (default 60, 20 with BENCH_QUICK)
  BENCH_WAKES=N           wake part: wakes through the bridge, and direct starts beside them (default 20)
  BENCH_ONLY=a,b          only these parts: startup,memory,idlecpu,latency,command,burst,idle,touches,
                          wake,reconnect,proxmox (such a partial run stays in bench/out unless BENCH_PUBLISH=1)
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

from dockerapi import Docker, DockerError, counting_proxy, follow_events  # noqa: E402
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
PVE_GUESTS = env_int("BENCH_PVE_GUESTS", 1000)
# Broker outages (seconds) for the reconnect part: the bridge's backoff is capped at 2 s, so
# however long the broker was away, it should be back within about that once the broker listens.
RECONNECT_OUTAGES = [1, 3, 8, 15] if not QUICK else [1, 8]
PVE_LAG = env_int("BENCH_PVE_LAG", 10)
IDLE_CONTAINERS = env_int("BENCH_IDLE_CONTAINERS", CONTAINERS)
IDLE_RATE = env_int("BENCH_IDLE_RATE", 10)
IDLE_STAGGER = os.environ.get("BENCH_IDLE_STAGGER", "touch").strip() or "touch"
TOUCH_CONTAINERS = env_int("BENCH_TOUCH_CONTAINERS", 5 * CONTAINERS)
TOUCH_RATE = env_int("BENCH_TOUCH_RATE", 100)
TOUCH_SECONDS = env_int("BENCH_TOUCH_SECONDS", 20 if QUICK else 60)
WAKES = env_int("BENCH_WAKES", 20)
SLOW_COMMANDS = env_int("BENCH_SLOW_COMMANDS", max(5, COMMANDS // 5))
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
    if k == f or v[c] == v[f]:
        return v[f]
    return v[f] + (v[c] - v[f]) * (k - f)  # inf when the upper rank is a missing sample (inf)


INF = float("inf")  # a sample that never came: it counts against every figure it is part of


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
    def __init__(self, bench, name, docker_include=None, proxmox=None, docker=True, mqtt_port=None,
                 docker_url="unix:///var/run/docker.sock"):
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
            c["docker"] = [{"url": docker_url, "include": docker_include or []}]
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
        self.slow_names = [[f"{self.run}-n{r}-{i:03d}" for i in range(SLOW_COMMANDS)] for r in range(ROUNDS)]
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
        self.main = Bridge(self, f"{self.run}-main", docker_include=self.watched + sum(self.burst_names, []) + sum(self.slow_names, [])).start()
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

    def fig_memory_image(self):
        """The image (`make image`) running in Docker as docs/install.md runs it, on the same
        200 containers and broker as the main bridge: RSS of the process inside."""
        image = "idlewatcher-bridge:latest"
        fig = self.results["figures"]["memory_image"] = {"image": image}
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            fig["not_measured"] = f"no {image}: run `make image`"
            log(f"memory in the image: not measured ({fig['not_measured']})")
            return
        name = f"{self.run}-img"
        config = os.path.join(self.dir, f"{name}.yaml")
        yaml_config(config, {
            "bridge": {"id": name},
            "mqtt": {"url": f"mqtt://127.0.0.1:{self.mqtt_port}", "base_topic": name,
                     "client_id": f"idlewatcher-bridge-{name}"},
            "homeassistant": {"enabled": False},
            "docker": [{"url": "unix:///var/run/docker.sock", "include": self.watched}],
        })
        os.chmod(config, 0o644)
        gid = os.stat("/var/run/docker.sock").st_gid
        size = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True).stdout
        fig["image_mb"] = int(size.strip() or 0) / 1e6
        run = subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host", "--group-add", str(gid),
                              "-v", "/var/run/docker.sock:/var/run/docker.sock",
                              "-v", f"{config}:/etc/idlewatcher-bridge/config.yaml:ro", image],
                             capture_output=True, text=True)
        if run.returncode != 0:
            fig["not_measured"] = f"docker run failed: {run.stderr.strip()[-300:]}"
            log(f"memory in the image: not measured ({fig['not_measured']})")
            return
        try:
            def all_out():
                return all(any(r["p"] for r in self.sub.topic(f"{name}/docker/{i}/status")) for i in self.watched)
            wait_until(all_out, 60, "the image's statuses")
            time.sleep(3)
            pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", name], capture_output=True,
                                 text=True).stdout.strip()
            m = proc_status(int(pid))
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            fig.update({"containers": len(self.watched), "rss_mib": m["VmRSS"] / MiB, "hwm_mib": m["VmHWM"] / MiB,
                        "rss_anon_mib": m["RssAnon"] / MiB, "rss_file_mib": m["RssFile"] / MiB,
                        "gnutls_no_implicit_init": b"GNUTLS_NO_IMPLICIT_INIT=1" in env})
            log("memory in the image with %d watched: RSS %.1f MiB (anon %.1f, file %.1f)" % (
                len(self.watched), fig["rss_mib"], fig["rss_anon_mib"], fig["rss_file_mib"]))
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)

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
        # An event the bridge never delivered counts as infinitely late.
        bridge_ms = [(got[k] - fl[k][0]) / 1e6 if k in got else INF for k in fl]
        by_action = {a: [(got[k] - fl[k][0]) / 1e6 if k in got else INF for k in fl if k[1] == a] for a in ("pause", "unpause")}
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
                        try:
                            ms, p = self.command(n, action, f"{self.run}-{r}-{k}-{action}")
                        except (TimeoutError, RuntimeError) as e:
                            # no reply, or a failed one: counts as infinitely late
                            self.notes.append(f"command round {r}: {e}")
                            ms, p = INF, {}
                            # put the container back where the next command expects it
                            try:
                                (d.pause if action == "pause" else d.unpause)(n)
                            except DockerError:
                                pass
                        out["bridge"][action].append(ms)
                        out["bridge_reported_ms"][action].append(p.get("duration_ms"))
                    else:
                        out[how][action].append(direct(n, action, how == "direct_readback"))
                    gap()
        # The bridge's CPU for the whole round (its commands, and the events of every pause and
        # unpause, direct ones included), per pause/unpause it saw.
        ops = sum(len(out[h][a]) for h in ("bridge", "direct", "direct_readback") for a in ("pause", "unpause"))
        out["cpu_ms_per_operation"] = self.main.cpu().since(cpu0)[1] / 1e6 / ops
        out.update(self.slow_path_round(r, rng, gap))
        return out

    def slow_path_round(self, r, rng, gap):
        """Commands on the slow path: `start` of a container created just before the command
        (the bridge may not have its status yet: it learns of the container from Docker's
        `create` event, which races the command), beside the same on a twin container made
        directly (POST create, then POST start; and with the status read before and after).
        A command that is not answered ok counts as infinite."""
        d = self.dk()
        out = {"slow_bridge": [], "slow_direct": [], "slow_direct_readback": [], "slow_known": 0, "slow_errors": []}
        for k in range(SLOW_COMMANDS):
            order = ["bridge", "direct", "direct_readback"]
            rng.shuffle(order)
            for how in order:
                if how == "bridge":
                    n = self.slow_names[r][k]
                    d.create(n, {"iwbench.run": self.run}, IMAGE, ["/bin/sleep", "1000000000"], init=True)
                    t_sent = time.time_ns()
                    try:
                        ms, p = self.command(n, "start", f"{self.run}-{r}-{k}-slow", expect_ok=False)
                        if not p.get("ok"):
                            ms = INF
                            out["slow_errors"].append(f"{n}: {(p.get('error') or {}).get('code')}: "
                                                      f"{(p.get('error') or {}).get('message', '')[:120]}")
                    except TimeoutError as e:
                        ms = INF
                        out["slow_errors"].append(f"{n}: {e}")
                    out["slow_bridge"].append(ms)
                    # whether the bridge had published the container's status before the command was sent
                    if any(x["t"] < t_sent for x in self.sub.topic(f"{self.main.base}/docker/{n}/status") if x["p"]):
                        out["slow_known"] += 1
                else:
                    n = f"{self.run}-nd{r}-{k:03d}-{how[-1]}"
                    d.create(n, {"iwbench.run": self.run}, IMAGE, ["/bin/sleep", "1000000000"], init=True)
                    t0 = time.time_ns()
                    if how == "direct_readback":
                        d.inspect(n)
                    d.start(n)
                    if how == "direct_readback":
                        d.inspect(n)
                    out[f"slow_{how}"].append((time.time_ns() - t0) / 1e6)
                d.remove(n)
                gap()
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

    # reconnect

    def fig_reconnect(self):
        """The broker goes away for a while and comes back on the same port: how long after it
        listens again is the bridge back (its retained `online` seen by a fresh subscriber; the
        broker keeps nothing across the restart, so only a reconnected bridge can have sent it)."""
        port = free_port()
        broker = self.start_broker(port, "mosquitto-reconnect", nodelay=BROKER_NODELAY)
        b = Bridge(self, f"{self.run}-rc", docker_include=[f"{self.run}-nothing"], mqtt_port=port)

        def back_online(deadline):
            c = MQTT("127.0.0.1", port, f"iwbench-rc-{self.run}-{time.monotonic_ns()}")
            try:
                c.subscribe([b.state_topic()], qos=1)
                while time.monotonic() < deadline:
                    b.check_alive()
                    for _, tp, p, _ in c.receive(timeout=0.05):
                        if tp == b.state_topic() and p == b"online":
                            return time.monotonic()
                return None
            finally:
                c.close()

        b.start()
        out = {"outage_s": [], "back_ms": []}
        try:
            if back_online(time.monotonic() + 30) is None:
                raise RuntimeError("the bridge did not come online")
            for outage in RECONNECT_OUTAGES:
                self.children.stop(broker)
                time.sleep(outage)
                broker = self.start_broker(port, "mosquitto-reconnect", nodelay=BROKER_NODELAY)
                listening = time.monotonic()  # start_broker returns once the port accepts
                t = back_online(listening + 30)
                out["outage_s"].append(outage)
                out["back_ms"].append(None if t is None else (t - listening) * 1000)
                log(f"reconnect: broker away {outage} s, bridge back "
                    f"{'never' if t is None else '%.0f ms' % ((t - listening) * 1000)} after it listened")
        finally:
            b.stop()
            self.children.stop(broker)
        backs = [INF if x is None else x for x in out["back_ms"]]
        self.results["figures"]["reconnect"] = {
            **out, "p50_ms": pct(backs, 50), "max_ms": max(backs) if backs else None}
        self.samples["reconnect"] = out

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
            # latency by (action, time), not by position: a missing event is infinitely late
            b_at = {}
            for key, y in zip(bkeys, b):
                b_at.setdefault(key, y["t"])
            for key, x in zip(fkeys, f):
                lat.append((b_at[key] - x["e"]["timeNano"]) / 1e6 if key in b_at else INF)
            if f:
                last_floor = max(last_floor, f[-1]["t"])
            if b:
                last_bridge = max(last_bridge, b[-1]["t"])
            st = self.sub.topic(f"{base}/docker/{n}/status")
            if st and st[-1]["p"] == "":
                cleared += 1
        time.sleep(2)
        mem_after = self.main.memory()
        self.samples.setdefault("burst_latency_ms", []).extend(lat)
        res = {
            "containers": len(names), "api_errors": errors[:5], "api_error_count": len(errors),
            "docker_events": floor_total, "bridge_events": bridge_total, "delivered": delivered,
            "containers_in_order": in_order, "statuses_cleared": cleared, "timed_out": timed_out,
            "api_seconds": (t_api - t0) / 1e9,
            "drain_after_docker_ms": (last_bridge - last_floor) / 1e6 if last_bridge and last_floor else None,
            "total_seconds": (last_bridge - t0) / 1e9 if last_bridge else None,
            "latency_p50_ms": pct(lat, 50), "latency_p99_ms": pct(lat, 99), "latency_max_ms": max(lat) if lat else None,
            "latency_missing": sum(1 for x in lat if x == INF),
            "cpu_s": cpu1.since(cpu0)[1] / 1e9, "cpu_s_stat": cpu1.since(cpu0)[0],
            "rss_before_mib": mem_before["VmRSS"] / MiB, "rss_after_mib": mem_after["VmRSS"] / MiB,
            "anon_before_mib": mem_before["RssAnon"] / MiB, "anon_after_mib": mem_after["RssAnon"] / MiB,
            "hwm_after_mib": mem_after["VmHWM"] / MiB, "mismatches": mismatches,
        }
        log("burst %d: %d/%d events delivered, %d/%d containers in order, %d cleared, drain %.0f ms after Docker's last; "
            "RSS %.1f → %.1f MiB" % (r, delivered, floor_total, in_order, len(names), cleared,
                                     res["drain_after_docker_ms"] or -1, res["rss_before_mib"], res["rss_after_mib"]))
        return res

    # idle policy (contract v1.1): timer precision, the cost of touches, wake until ready

    def create_many(self, names, labels, cmd, start=False, init=False, healthcheck=None, threads=8):
        """Creates (and starts) containers of this run, `threads` at a time; returns name → id."""
        refs = {}

        def make(n):
            c = self.dk()
            r = c.create(n, {"iwbench.run": self.run, **labels}, IMAGE, cmd, init=init, healthcheck=healthcheck)
            if start:
                c.start(n)
            return n, r["Id"]

        with cf.ThreadPoolExecutor(threads) as ex:
            for n, ref in ex.map(make, names):
                refs[n] = ref
        return refs

    def remove_many(self, names, threads=8):
        with cf.ThreadPoolExecutor(threads) as ex:
            list(ex.map(lambda n: self.dk().remove(n), names))

    def statuses(self, base, name):
        """[(receive ns, status JSON or None for an empty payload)] of a container's status topic."""
        return [(r["t"], json.loads(r["p"]) if r["p"] else None) for r in self.sub.topic(f"{base}/docker/{name}/status")]

    def start_proxy(self, tag):
        """A counting proxy in front of dockerd: (process, its socket, the Tail of its requests)."""
        sock = os.path.join(self.dir, f"docker-proxy-{tag}.sock")
        reqlog = os.path.join(self.dir, f"docker-proxy-{tag}.jsonl")
        proxy = self.children.start([sys.executable, __file__, "--role", "dockerproxy", sock, reqlog],
                                    os.path.join(self.dir, f"docker-proxy-{tag}.log"))
        wait_until(lambda: os.path.exists(sock), 10, "the counting proxy")
        return proxy, sock, Tail(reqlog)

    def fig_idle_timers(self):
        """Timer precision: IDLE_CONTAINERS idle-managed containers (idle_timeout 5s; Docker's
        init in front of a plain busybox sleep, so that `stop` ends it in ~0.1 s rather than
        after the 10 s stop timeout of a PID 1 that ignores SIGTERM), a bridge of their own
        behind a counting proxy (to see when it sends each `stop`). Their last activity is
        spread out, IDLE_RATE containers a second in random order, so that timers end
        spread out as real activity spreads them:
          BENCH_IDLE_STAGGER=touch (default): the containers run before the bridge starts; every
            one is touched every 2 s (`…/activity`, empty) until its own last touch;
          BENCH_IDLE_STAGGER=start: the containers are created stopped and the harness starts
            them (becoming running is activity); Docker then also does the harness's starts.
        Per container: the status `stopped` received − the `last_activity` of its retained idle
        state (the last received before it) − 5 s. Beside it: the bridge's POST …/stop and
        Docker's `kill` event against the same deadline, and the stop against the harness's own
        last activity (touch sent or start call). A container that has not slept 35 s after the
        last activity, or whose idle state does not show that activity, counts as infinite."""
        n = IDLE_CONTAINERS
        timeout_s = 5
        by_start = IDLE_STAGGER == "start"
        names = [f"{self.run}-i{i:03d}" for i in range(n)]
        log(f"idle timers: creating {n} idle-managed containers (idle_timeout {timeout_s}s) …")
        self.create_many(names, {"idlewatcher.idle_timeout": f"{timeout_s}s"}, ["/bin/sleep", "1000000000"], init=True,
                         start=not by_start)
        proxy, sock, requests = self.start_proxy("idle")
        b = Bridge(self, f"{self.run}-idle", docker_include=names, docker_url=f"unix://{sock}").start()
        b.wait_online()
        b.statuses_out("docker", names)
        order = list(names)
        random.Random(11).shuffle(order)
        activity = {}  # name → the harness's last activity for it (ns): its last touch sent, or its start call
        if by_start:
            time.sleep(2)
            t0 = time.monotonic() + 0.5

            def start(i_n):
                i, name = i_n
                time.sleep(max(0.0, t0 + i / IDLE_RATE - time.monotonic()))
                activity[name] = time.time_ns()
                self.dk().start(name)

            log(f"idle timers: starting them, {IDLE_RATE} a second; each should stop {timeout_s} s after its last activity")
            with cf.ThreadPoolExecutor(8) as ex:
                list(ex.map(start, enumerate(order)))
        else:
            client = MQTT("127.0.0.1", self.mqtt_port, f"iwbench-idle-{self.run}")
            t0 = time.monotonic() + 2
            final = {name: t0 + i / IDLE_RATE for i, name in enumerate(order)}
            next_keep = {name: 0.0 for name in names}
            log(f"idle timers: last touches {IDLE_RATE} a second (the others touched every 2 s until theirs); "
                f"each should stop {timeout_s} s after its last activity")
            while len(activity) < len(names):
                now = time.monotonic()
                for name in order:
                    if name in activity:
                        continue
                    if now >= final[name]:
                        client.publish(f"{b.base}/docker/{name}/activity", b"", qos=1)
                        activity[name] = time.time_ns()
                    elif now >= next_keep[name] and final[name] - now > 0.3:
                        client.publish(f"{b.base}/docker/{name}/activity", b"", qos=1)
                        next_keep[name] = now + 2
                b.check_alive()
                time.sleep(0.005)
            client.close()

        def stopped_after(name):
            for t, st in self.statuses(b.base, name):
                if st and st.get("status") == "stopped" and t > activity[name]:
                    return t
            return None

        def all_slept():
            b.check_alive()
            return all(stopped_after(x) for x in names)

        try:
            wait_until(all_slept, timeout_s + 30, "every idle container stopped", interval=0.25)
        except TimeoutError:
            pass
        time.sleep(1)
        self.floor.poll()
        requests.poll()
        posts = {}
        for q in requests.records:
            if q.get("m") == "POST" and q["p"].split("?")[0].endswith("/stop"):
                posts.setdefault(q["p"].split("?")[0].split("/")[-2], []).append(q["t"])
        rows, lag, lag_post, lag_kill, lag_harness, missing, early = [], [], [], [], [], [], []
        for name in names:
            t_stop = stopped_after(name)
            idle = [(r["t"], json.loads(r["p"])) for r in self.sub.topic(f"{b.base}/docker/{name}/idle") if r["p"]]
            before = [p for t, p in idle if t_stop is None or t <= t_stop]
            la = before[-1].get("last_activity") if before else None
            la_ns = rfc3339_ns(la) if la else None
            evs = [r["e"] for r in self.floor.events(name)]
            kill_ev = next((e for e in evs if e.get("Action") == "kill" and e["timeNano"] > activity[name]), None)
            post = next((t for t in posts.get(name, []) if t > activity[name]), None)
            row = {"name": name, "activity_ns": activity[name], "last_activity": la, "stopped_ns": t_stop,
                   "post_stop_ns": post, "kill_event_ns": kill_ev["timeNano"] if kill_ev else None}
            rows.append(row)
            if t_stop is None or la_ns is None or la_ns < activity[name] - 10**9:
                # never slept, or slept without its last activity in its idle state
                missing.append(name)
                for v in (lag, lag_post, lag_kill, lag_harness):
                    v.append(INF)
                continue
            x = (t_stop - la_ns) / 1e9 - timeout_s
            lag.append(x)
            if x < 0:
                early.append(name)
            lag_post.append((post - la_ns) / 1e9 - timeout_s if post else INF)
            lag_kill.append((kill_ev["timeNano"] - la_ns) / 1e9 - timeout_s if kill_ev else INF)
            lag_harness.append((t_stop - activity[name]) / 1e9 - timeout_s)
        rc = b.stop()
        if rc != 0:
            self.notes.append(f"idle-timer bridge exited {rc}")
        self.children.stop(proxy)
        self.remove_many(names)
        f = {
            "containers": n, "timeout_s": timeout_s, "stagger": IDLE_STAGGER, "per_s": IDLE_RATE,
            "p50_s": pct(lag, 50), "p99_s": pct(lag, 99), "max_s": max(lag) if lag else None, "min_s": min(lag) if lag else None,
            "post_stop_p50_s": pct(lag_post, 50), "post_stop_p99_s": pct(lag_post, 99),
            "kill_p50_s": pct(lag_kill, 50), "kill_p99_s": pct(lag_kill, 99),
            "from_harness_p50_s": pct(lag_harness, 50), "from_harness_p99_s": pct(lag_harness, 99),
            "missing": len(missing), "missing_names": missing[:10], "early": len(early), "early_names": early[:10],
            "rows": rows,
        }
        self.results["figures"]["idle_timers"] = f
        self.samples["idle_timer_lag_s"] = lag
        if missing:
            self.notes.append(f"idle timers: {len(missing)} of {n} containers did not sleep (counted as infinite)")
        if early:
            self.notes.append(f"idle timers: {len(early)} of {n} containers slept before their timeout ended")
        log("idle timers (%s): stopped − last_activity − %d s: p50 %s, p99 %s, max %s; the bridge's POST stop p50 %s, "
            "p99 %s; Docker's kill event p50 %s, p99 %s; %d missing, %d early" % (
                IDLE_STAGGER, timeout_s, fmt(f["p50_s"], " s", 3), fmt(f["p99_s"], " s", 3), fmt(f["max_s"], " s", 3),
                fmt(f["post_stop_p50_s"], " s", 3), fmt(f["post_stop_p99_s"], " s", 3),
                fmt(f["kill_p50_s"], " s", 3), fmt(f["kill_p99_s"], " s", 3), len(missing), len(early)))

    def fig_touches(self):
        """The cost of touches: TOUCH_CONTAINERS idle-managed running containers (idle_timeout 1h),
        a bridge whose Docker endpoint is a counting proxy in front of dockerd; a window with
        nothing happening, then a window of touches at TOUCH_RATE a second spread over them.
        The bridge's CPU (utime+stime) and RSS in each window, and every Engine API request it
        made in each (there must be none for a touch)."""
        n = TOUCH_CONTAINERS
        names = [f"{self.run}-t{i:04d}" for i in range(n)]
        log(f"touches: creating and starting {n} idle-managed containers (idle_timeout 1h) …")
        t_c = time.monotonic()
        self.create_many(names, {"idlewatcher.idle_timeout": "1h"}, ["/bin/sleep", "1000000000"], start=True, init=True,
                         threads=12)
        log(f"touches: {n} containers up in {time.monotonic() - t_c:.0f} s")
        proxy, sock, requests = self.start_proxy("touch")
        f = {"containers": n, "rate_per_s": TOUCH_RATE, "seconds": TOUCH_SECONDS}
        self.results["figures"]["touches"] = f
        b = Bridge(self, f"{self.run}-touch", docker_include=names, docker_url=f"unix://{sock}").start()
        b.wait_online(60)
        b.statuses_out("docker", names, timeout=180)

        def idle_states_out():
            b.check_alive()
            return all(any(r["p"] for r in self.sub.topic(f"{b.base}/docker/{x}/idle")) for x in names)

        wait_until(idle_states_out, 60, "every idle state", interval=0.25)
        time.sleep(3)
        requests.poll()
        f["startup_requests"] = len([r for r in requests.records if "m" in r])

        def window(seconds, touch):
            """CPU, RSS (sampled every 0.5 s) and proxy requests over `seconds`, touching or not."""
            rss, anon = [], []
            sent = []
            requests.poll()
            r0 = len(requests.records)
            c0 = b.cpu()
            w0 = time.monotonic()
            t0_ns = time.time_ns()
            rng = random.Random(5)
            order = list(names)
            rng.shuffle(order)
            k = 0
            next_mem = w0
            client = MQTT("127.0.0.1", self.mqtt_port, f"iwbench-touch-{self.run}") if touch else None
            while True:
                now = time.monotonic()
                if now - w0 >= seconds:
                    break
                if now >= next_mem:
                    m = b.memory()
                    rss.append(m["VmRSS"] / MiB)
                    anon.append(m["RssAnon"] / MiB)
                    next_mem += 0.5
                    continue
                due = w0 + k / TOUCH_RATE if touch else INF
                if now >= due:
                    name = order[k % len(order)]
                    client.publish(f"{b.base}/docker/{name}/activity", b"", qos=0)
                    sent.append((time.time_ns(), name))
                    k += 1
                    continue
                time.sleep(max(0.0, min(due, next_mem, w0 + seconds) - now))
            c1 = b.cpu()
            wall = time.monotonic() - w0
            t1_ns = time.time_ns()
            if client:
                client.close()
            time.sleep(1)  # requests a touch would cause come within a second (the bridge acts at once)
            requests.poll()
            reqs = [r for r in requests.records[r0:] if "m" in r and r["t"] <= t1_ns + 10**9]
            by_path = {}
            for r in reqs:
                key = f"{r['m']} {r['p'].split('?')[0]}"
                by_path[key] = by_path.get(key, 0) + 1
            d_stat, d_ns, _ = c1.since(c0)
            m = b.memory()
            return {"seconds": wall, "cpu_s_stat": d_stat, "cpu_percent": 100 * d_stat / wall,
                    "cpu_percent_schedstat": 100 * d_ns / 1e9 / wall,
                    "rss_mib_median": med(rss), "rss_mib_max": max(rss), "rss_mib_end": m["VmRSS"] / MiB,
                    "anon_mib_max": max(anon), "rss_file_mib_end": m["RssFile"] / MiB,
                    "requests": len(reqs), "requests_by_path": by_path, "touches": len(sent),
                    "from_ns": t0_ns, "to_ns": t1_ns}, sent

        log(f"touches: {TOUCH_SECONDS} s with nothing happening …")
        f["idle"], _ = window(TOUCH_SECONDS, False)
        log(f"touches: {TOUCH_SECONDS} s of touches at {TOUCH_RATE}/s over {n} containers …")
        f["touching"], sent = window(TOUCH_SECONDS, True)
        # Did the touches count? Each touched container's idle state must show a last_activity
        # at or after its first touch (the idle state is published at most once a second).
        first_touch = {}
        for t, name in sent:
            first_touch.setdefault(name, t)
        time.sleep(1.5)
        seen = 0
        for name, t in first_touch.items():
            for r in self.sub.topic(f"{b.base}/docker/{name}/idle"):
                if r["p"] and r["t"] >= t:
                    la = json.loads(r["p"]).get("last_activity")
                    if la and rfc3339_ns(la) >= t - 50 * 10**6:
                        seen += 1
                        break
        f["touched_containers"] = len(first_touch)
        f["touches_seen_in_idle_state"] = seen
        # The counter's own check: a `status` command makes the bridge inspect the container once.
        requests.poll()
        r0 = len(requests.records)
        client = MQTT("127.0.0.1", self.mqtt_port, f"iwbench-touchchk-{self.run}")
        client.subscribe([f"{b.base}/docker/+/reply"], qos=1)
        self.command(names[0], "status", f"{self.run}-touch-check", client=client, base=b.base)
        client.close()
        time.sleep(0.5)
        requests.poll()
        f["proxy_check_status_command_requests"] = [f"{r['m']} {r['p']}" for r in requests.records[r0:] if "m" in r]
        rc = b.stop()
        if rc != 0:
            self.notes.append(f"touch bridge exited {rc}")
        self.children.stop(proxy)
        log(f"touches: removing {n} containers …")
        self.remove_many(names, threads=12)
        I, T = f["idle"], f["touching"]
        log("touches: CPU %.2f %% touching vs %.2f %% idle; RSS %.1f vs %.1f MiB; Engine API requests %d touching (%s), "
            "%d idle; %d/%d touched containers' idle state moved" % (
                T["cpu_percent"], I["cpu_percent"], T["rss_mib_max"], I["rss_mib_max"], T["requests"],
                T["requests_by_path"], I["requests"], seen, len(first_touch)))

    def fig_wake(self):
        """`wake` → reply with ready:true, beside the container's own start → healthy. Fresh
        containers (created, never started: status `stopped`) with a healthcheck that passes
        once their command has slept 2 s; each woken through the bridge, or started directly
        (POST start, then inspect every 50 ms until healthy) for the reference. Per woken
        container, its own time is Docker's `health_status: healthy` event − its `start` event
        for that very start; the bridge's overhead is the round trip minus that. Each container
        is removed once measured (running healthchecks would load the machine)."""
        k = WAKES
        interval = 1.0
        wake_names = [f"{self.run}-k{i:02d}" for i in range(k)]
        direct_names = [f"{self.run}-h{i:02d}" for i in range(k)]
        log(f"wake: {k} containers woken through the bridge, {k} started directly (healthcheck every {interval:.0f} s) …")
        self.create_many(wake_names + direct_names, {},
                         ["/bin/sh", "-c", "sleep 2; echo ok > /healthy; exec sleep 100000"],
                         healthcheck=("cat /healthy", interval))
        # Behind a counting proxy: the moment the bridge sends POST …/start is the container's
        # "docker start", from which its own time to healthy counts.
        proxy, sock, requests = self.start_proxy("wake")
        b = Bridge(self, f"{self.run}-wake", docker_include=wake_names, docker_url=f"unix://{sock}").start()
        b.wait_online()
        b.statuses_out("docker", wake_names)
        client = MQTT("127.0.0.1", self.mqtt_port, f"iwbench-wake-{self.run}")
        client.subscribe([f"{b.base}/docker/+/reply"], qos=1)
        time.sleep(1)
        d = self.dk()
        rng = random.Random(3)
        bridge_rows, direct_rows = [], []
        for i in range(k):
            order = ["bridge", "direct"]
            rng.shuffle(order)
            for how in order:
                if how == "bridge":
                    name = wake_names[i]
                    rid = f"{self.run}-wake-{i}"
                    t0 = time.time_ns()
                    client.publish(f"{b.base}/docker/{name}/command", json.dumps({"action": "wake", "request_id": rid}),
                                   qos=COMMAND_QOS)
                    reply, t1 = None, None
                    deadline = time.monotonic() + 90
                    while reply is None and time.monotonic() < deadline:
                        for t, tp, payload, _ in client.receive(timeout=1):
                            if tp.endswith("/reply"):
                                p = json.loads(payload)
                                if p.get("request_id") == rid:
                                    reply, t1 = p, t
                    ok = bool(reply and reply.get("ok") and reply.get("ready") is True)
                    bridge_rows.append({"name": name, "sent_ns": t0, "reply_ns": t1, "reply": reply,
                                        "ms": (t1 - t0) / 1e6 if ok else INF})
                else:
                    name = direct_names[i]
                    t0 = time.time_ns()
                    d.start(name)
                    healthy = None
                    deadline = time.monotonic() + 90
                    while healthy is None and time.monotonic() < deadline:
                        if ((d.inspect(name).get("State") or {}).get("Health") or {}).get("Status") == "healthy":
                            healthy = time.time_ns()
                        else:
                            time.sleep(0.05)
                    direct_rows.append({"name": name, "sent_ns": t0, "ms": (healthy - t0) / 1e6 if healthy else INF})
                d.remove(name)
                time.sleep(rng.uniform(0.2, 0.4))
        client.close()
        rc = b.stop()
        if rc != 0:
            self.notes.append(f"wake bridge exited {rc}")
        self.children.stop(proxy)
        time.sleep(0.5)
        requests.poll()

        def own(name, after_ns):
            """Docker's start event and the first healthy after it (timeNano), from the floor."""
            evs = [r["e"] for r in self.floor.events(name)]
            st = next((e for e in evs if e.get("Action") == "start" and e["timeNano"] >= after_ns), None)
            hl = next((e for e in evs if st and e.get("Action", "").startswith("health_status")
                       and "healthy" == e["Action"].split(":", 1)[-1].strip() and e["timeNano"] > st["timeNano"]), None)
            return (st["timeNano"] if st else None), (hl["timeNano"] if hl else None)

        overhead, front, back, own_bridge, own_bridge_ev, own_direct_ev, direct_start = [], [], [], [], [], [], []
        for r in bridge_rows:
            st, hl = own(r["name"], r["sent_ns"])
            post = next((q["t"] for q in requests.records if q.get("m") == "POST" and q["t"] >= r["sent_ns"]
                         and q["p"].split("?")[0].endswith(f"/containers/{r['name']}/start")), None)
            r["start_event_ns"], r["healthy_event_ns"], r["post_start_ns"] = st, hl, post
            if st and hl and post:
                # own: the bridge's POST …/start → Docker's healthy event; the rest is the bridge's
                own_ms = (hl - post) / 1e6
                own_bridge.append(own_ms)
                own_bridge_ev.append((hl - st) / 1e6)
                overhead.append(r["ms"] - own_ms)
                front.append((post - r["sent_ns"]) / 1e6)
                back.append((r["reply_ns"] - hl) / 1e6 if r["ms"] != INF else INF)
            else:
                overhead.append(INF)
                own_bridge.append(INF)
        for r in direct_rows:
            st, hl = own(r["name"], r["sent_ns"])
            if st and hl:
                own_direct_ev.append((hl - st) / 1e6)
                direct_start.append((st - r["sent_ns"]) / 1e6)
        bridge_ms = [r["ms"] for r in bridge_rows]
        direct_ms = [r["ms"] for r in direct_rows]
        f = {
            "wakes": k, "health_interval_s": interval,
            "bridge_p50_ms": pct(bridge_ms, 50), "bridge_p99_ms": pct(bridge_ms, 99),
            "own_p50_ms": pct(own_bridge, 50), "own_p99_ms": pct(own_bridge, 99),
            "own_events_p50_ms": pct(own_bridge_ev, 50),
            "overhead_p50_ms": pct(overhead, 50), "overhead_p99_ms": pct(overhead, 99),
            "overhead_max_ms": max(overhead) if overhead else None,
            "front_p50_ms": pct(front, 50), "back_p50_ms": pct(back, 50), "back_p99_ms": pct(back, 99),
            "direct_p50_ms": pct(direct_ms, 50), "direct_p99_ms": pct(direct_ms, 99),
            "direct_events_p50_ms": pct(own_direct_ev, 50), "direct_start_call_to_event_p50_ms": pct(direct_start, 50),
            "not_ready": sum(1 for x in bridge_ms if x == INF), "direct_not_healthy": sum(1 for x in direct_ms if x == INF),
            "bridge": bridge_rows, "direct": direct_rows,
        }
        self.results["figures"]["wake"] = f
        self.samples["wake_bridge_ms"] = bridge_ms
        self.samples["wake_overhead_ms"] = overhead
        self.samples["wake_direct_ms"] = direct_ms
        if f["not_ready"]:
            self.notes.append(f"wake: {f['not_ready']} of {k} wakes got no ready reply (counted as infinite)")
        log("wake: reply p50 %s p99 %s; container's own start → healthy p50 %s; overhead p50 %s p99 %s "
            "(command → POST start %s, healthy event → reply %s); direct start → healthy (polled) p50 %s" % (
                fmt(f["bridge_p50_ms"], " ms", 0), fmt(f["bridge_p99_ms"], " ms", 0), fmt(f["own_p50_ms"], " ms", 0),
                fmt(f["overhead_p50_ms"], " ms", 0), fmt(f["overhead_p99_ms"], " ms", 0), fmt(f["front_p50_ms"], " ms", 0),
                fmt(f["back_p50_ms"], " ms", 0), fmt(f["direct_p50_ms"], " ms", 0)))

    # proxmox

    def fig_proxmox(self):
        cts, vms = PVE_GUESTS - PVE_GUESTS // 2, PVE_GUESTS // 2
        f = {"guests": PVE_GUESTS, "cts": cts, "vms": vms, "poll_interval_s": 2, "lag_s": PVE_LAG,
             "seconds": PVE_SECONDS}
        self.results["figures"]["proxmox"] = f
        secret = "%08x-bench-%08x" % (random.getrandbits(32), random.getrandbits(32))
        port_file = os.path.join(self.dir, "pve.port")
        ca = os.path.join(self.dir, "pve-ca.pem")
        secret_file = os.path.join(self.dir, "pve.secret")
        with open(secret_file, "w") as fh:
            fh.write(secret + "\n")
        os.chmod(secret_file, 0o600)
        # Half CTs, half VMs (some paused, some stopped, a few templates), pvestatd's lag as on
        # a real cluster: /cluster/resources is up to PVE_LAG seconds stale.
        sim = self.children.start(
            [sys.executable, os.path.join(ROOT, "tools/pve-simulator/pve_simulator.py"), "--cts", str(cts),
             "--vms", str(vms), "--vms-paused", str(vms // 20), "--vms-stopped", str(vms // 10),
             "--vm-templates", "5", "--resources-lag", str(PVE_LAG),
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
            "poll_interval": "2s", "types": ["lxc", "qemu"]}).start()
        first_vm = 100 + cts
        templates = {first_vm + vms // 20 + vms // 10 + k for k in range(5)}
        vmids = [str(v) for v in range(100, 100 + PVE_GUESTS) if v not in templates]
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
        # Changes spread over the window. Made through Proxmox (a GUI action: a task), on CTs
        # and running VMs; and made inside the guest (no task: only pvestatd tells).
        running_vms = [first_vm + vms // 20 + vms // 10 + 5 + k for k in (3, 140, 300)]
        tasked = [("ct", 100 + k) for k in (17, 203, 420)] + [("vm", v) for v in running_vms]
        inside = [("ct", 100 + k) for k in (55, 311)] + [("vm", running_vms[0] + 20), ("vm", running_vms[1] + 20)]
        changes = ([("task", kind, v, "stop") for kind, v in tasked] + [("guest", kind, v, "stop") for kind, v in inside]
                   + [("task", kind, v, "start") for kind, v in tasked]
                   + [("guest", kind, v, "start") for kind, v in inside])
        when = [PVE_SECONDS * (i + 1) / (len(changes) + 1) for i in range(len(changes))]
        log(f"proxmox: {cts} CTs + {vms} VMs, poll_interval 2s, lag {PVE_LAG} s, {PVE_SECONDS} s, "
            f"{len(changes)} changes …")
        c0 = b.cpu()
        s0 = proc_cpu(sim.pid)
        t0 = time.monotonic()
        t0_ns = time.time_ns()
        done = []
        for (how, kind, vmid, action), at in zip(changes, when):
            time.sleep(max(0, t0 + at - time.monotonic()))
            t_change = time.time_ns()
            if how == "task":
                sim_call("POST", f"/_sim/{kind}/{vmid}/action/{'shutdown' if action == 'stop' else 'start'}",
                         {"timeout": 5} if action == "stop" else {})
            else:
                sim_call("POST", f"/_sim/{kind}/{vmid}", {"status": "stopped" if action == "stop" else "running"})
            done.append((how, str(vmid), action, t_change))
        # Past the window, time for the last change to show: pvestatd's lag, an interval, a margin.
        time.sleep(max(0, t0 + max(PVE_SECONDS, when[-1] + PVE_LAG + 2 + 3) - time.monotonic()))
        wall = time.monotonic() - t0
        c1 = b.cpu()
        s1 = proc_cpu(sim.pid)
        stats = sim_call("GET", "/_sim/stats")
        reqs = stats.get("requests", {})
        resources = sum(v for k, v in reqs.items() if k.startswith("GET /cluster/resources"))
        tasks = sum(v for k, v in reqs.items() if k.startswith("GET /cluster/tasks"))
        current = sum(v for k, v in reqs.items() if k.endswith("/status/current"))
        other = {k: v for k, v in reqs.items()
                 if not k.startswith("GET /cluster/") and not k.endswith("/status/current")}
        # the events the bridge published for the changes, and how long after each (missing: infinite)
        delays = {"task": [], "guest": []}
        for how, vmid, action, t_change in done:
            ev = [r for r in b.bench.sub.topic(f"{b.base}/proxmox/{vmid}/event")
                  if r["t"] >= t_change and json.loads(r["p"]).get("action") == action]
            delays[how].append((ev[0]["t"] - t_change) / 1e6 if ev else None)

        def pct(xs, q):
            vals = sorted(float("inf") if x is None else x for x in xs)
            return vals[min(len(vals) - 1, int(round(q * (len(vals) - 1))))] if vals else None

        f.update({
            "seconds": wall, "requests": reqs, "cluster_resources": resources, "cluster_tasks": tasks,
            "expected_polls": wall / 2, "status_current": current, "changed_guests": len(changes),
            "other_requests": other,
            "events_delivered": sum(1 for d in delays.values() for x in d if x is not None),
            "changes": [(how, v, a) for how, v, a, _ in done],
            "task_delay_ms": delays["task"], "guest_delay_ms": delays["guest"],
            "task_delay_p50_ms": pct(delays["task"], 0.5), "task_delay_p99_ms": pct(delays["task"], 0.99),
            "guest_delay_p50_ms": pct(delays["guest"], 0.5), "guest_delay_p99_ms": pct(delays["guest"], 0.99),
            "cpu_s": c1.since(c0)[1] / 1e9, "cpu_percent": 100 * c1.since(c0)[1] / 1e9 / wall,
            "cpu_percent_stat": 100 * c1.since(c0)[0] / wall,
            "simulator_cpu_percent": 100 * s1.since(s0)[0] / wall,
            "rss_mib": b.memory()["VmRSS"] / MiB, "hwm_mib": b.memory()["VmHWM"] / MiB,
            "since_ns": t0_ns,
        })
        log("proxmox: %d /cluster/resources + %d /cluster/tasks (expected ~%.0f each), %d status/current for %d "
            "changes, other %s; events after a task p50/p99 %s/%s ms, inside the guest %s/%s ms; bridge CPU %.2f %%" % (
                resources, tasks, wall / 2, current, len(changes), other, f["task_delay_p50_ms"],
                f["task_delay_p99_ms"], f["guest_delay_p50_ms"], f["guest_delay_p99_ms"], f["cpu_percent"]))
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
        docker_parts = {"startup", "memory", "idlecpu", "latency", "command", "burst"}
        if any(wanted(p) for p in docker_parts):
            if wanted("memory"):
                self.fig_memory_idle()
            self.create_watched()
            if wanted("startup"):
                self.fig_startup()
            self.start_main()
            if wanted("memory"):
                self.fig_memory_image()
            if wanted("idlecpu"):
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
        for part, fig in (("idle", self.fig_idle_timers), ("touches", self.fig_touches), ("wake", self.fig_wake),
                          ("reconnect", self.fig_reconnect)):
            if wanted(part):
                fig()
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
            # The figures are percentiles over every sample of every round (a missing event is
            # infinite); the medians of the per-round figures, as earlier runs gave them, stay
            # beside them under "round_medians" for comparison.
            F["event_latency"] = {
                "events_per_round": EVENTS, "rounds": per,
                "bridge_p50": pct(allb, 50), "bridge_p99": pct(allb, 99), "bridge_max": max(allb) if allb else None,
                "floor_p50": pct(allf, 50), "floor_p99": pct(allf, 99), "floor_max": max(allf) if allf else None,
                "n": len(allb), "undelivered": sum(1 for x in allb if x == INF),
                "bridge_p50_spread": spread([p["bridge_p50"] for p in per]),
                "bridge_p99_spread": spread([p["bridge_p99"] for p in per]),
                "floor_p50_spread": spread([p["floor_p50"] for p in per]),
                "floor_p99_spread": spread([p["floor_p99"] for p in per]),
                "added_p50": pct(allb, 50) - pct(allf, 50),
                "added_p99": pct(allb, 99) - pct(allf, 99),
                "round_medians": {
                    "bridge_p50": med([p["bridge_p50"] for p in per]), "bridge_p99": med([p["bridge_p99"] for p in per]),
                    "floor_p50": med([p["floor_p50"] for p in per]), "floor_p99": med([p["floor_p99"] for p in per]),
                    "added_p50": med([p["bridge_p50"] - p["floor_p50"] for p in per]),
                    "added_p99": med([p["bridge_p99"] - p["floor_p99"] for p in per])},
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
                pool = {h: sum((c[h][action] for c in cmd_rounds), []) for h in ("bridge", "direct", "direct_readback")}
                out[action] = {
                    "rounds": per,
                    # over every command of every round (an unanswered one is infinite)
                    "bridge_p50": pct(pool["bridge"], 50), "bridge_p99": pct(pool["bridge"], 99),
                    "direct_p50": pct(pool["direct"], 50), "direct_p99": pct(pool["direct"], 99),
                    "readback_p50": pct(pool["direct_readback"], 50), "readback_p99": pct(pool["direct_readback"], 99),
                    "bridge_reported_p50": pct([x for c in cmd_rounds for x in c["bridge_reported_ms"][action] if x is not None], 50),
                    "unanswered": sum(1 for x in pool["bridge"] if x == INF),
                    **{k + "_spread": spread([p[k] for p in per]) for k in ("bridge_p50", "bridge_p99", "direct_p50")},
                    "added_p50": pct(pool["bridge"], 50) - pct(pool["direct"], 50),
                    "added_p50_vs_readback": pct(pool["bridge"], 50) - pct(pool["direct_readback"], 50),
                    "round_medians": {**{k: med([p[k] for p in per]) for k in per[0]},
                                      "added_p50": med([p["bridge_p50"] - p["direct_p50"] for p in per]),
                                      "added_p50_vs_readback": med([p["bridge_p50"] - p["readback_p50"] for p in per])},
                }
            out["cpu_ms_per_operation"] = med([c["cpu_ms_per_operation"] for c in cmd_rounds])
            sb = sum((c["slow_bridge"] for c in cmd_rounds), [])
            sd = sum((c["slow_direct"] for c in cmd_rounds), [])
            sr = sum((c["slow_direct_readback"] for c in cmd_rounds), [])
            out["slow_start"] = {
                "commands": len(sb), "bridge_p50": pct(sb, 50), "bridge_p99": pct(sb, 99),
                "direct_p50": pct(sd, 50), "direct_p99": pct(sd, 99), "readback_p50": pct(sr, 50), "readback_p99": pct(sr, 99),
                "added_p50": pct(sb, 50) - pct(sd, 50) if sb and sd else None,
                "status_known_before": sum(c["slow_known"] for c in cmd_rounds),
                "not_ok": sum(1 for x in sb if x == INF), "errors": sum((c["slow_errors"] for c in cmd_rounds), [])[:10],
            }
            self.samples["command_slow_start_bridge_ms"] = sb
            self.samples["command_slow_start_direct_ms"] = sd
            self.samples["command_slow_start_readback_ms"] = sr
            for key in ("status_bridge", "status_direct", "not_found", "echo"):
                out[key + "_p50"] = pct(sum((c[key] for c in cmd_rounds), []), 50)
                out[key + "_p99"] = pct(sum((c[key] for c in cmd_rounds), []), 99)
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
                "latency_p50_ms": pct(self.samples.get("burst_latency_ms", []), 50),
                "latency_p99_ms": pct(self.samples.get("burst_latency_ms", []), 99),
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
    if v == INF:
        return f"∞{unit}"
    return f"{v:.{nd}f}{unit}"


def fmt_signed(v, nd=1):
    return "—" if v is None else ("+∞" if v == INF else f"{v:+.{nd}f}")


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
                     + f", {L['added_p50']:+.2f} over floor",
                     "floor " + fmt(L["floor_p50"], " ms", 2) + fmt_spread(L["floor_p50_spread"], 2),
                     "≤ floor + 1 ms", met(L["added_p50"] <= 1.0)))
        rows.append(("event latency p99", fmt(L["bridge_p99"], " ms", 2) + fmt_spread(L["bridge_p99_spread"], 2)
                     + f", {L['added_p99']:+.2f} over floor",
                     "floor " + fmt(L["floor_p99"], " ms", 2) + fmt_spread(L["floor_p99_spread"], 2),
                     "≤ floor + 5 ms", met(L["added_p99"] <= 5.0)))
    if "command_round_trip" in F:
        for action in ("pause", "unpause"):
            C = F["command_round_trip"][action]
            rows.append((f"command {action} p50 / p99",
                         fmt(C["bridge_p50"], "", 2) + " / " + fmt(C["bridge_p99"], " ms", 2) + fmt_spread(C["bridge_p50_spread"], 2)
                         + f", p50 {C['added_p50']:+.2f} over direct, {C['added_p50_vs_readback']:+.2f} over read-back",
                         "direct " + fmt(C["direct_p50"], "", 2) + " / " + fmt(C["direct_p99"], " ms", 2)
                         + f"; direct with status read before and after {fmt(C['readback_p50'], ' ms', 2)}",
                         "p50 ≤ direct + 2 ms", met(C["added_p50"] <= 2.0)))
    if "command_round_trip" in F and "slow_start" in F["command_round_trip"]:
        S = F["command_round_trip"]["slow_start"]
        rows.append(("command start, just created (slow path)",
                     f"{fmt(S['bridge_p50'], '', 1)} / {fmt(S['bridge_p99'], ' ms', 1)}, p50 {fmt_signed(S['added_p50'], 1)} over direct; "
                     f"{S['not_ok']}/{S['commands']} not ok",
                     f"direct {fmt(S['direct_p50'], '', 1)} / {fmt(S['direct_p99'], ' ms', 1)}; with status read before and after "
                     f"{fmt(S['readback_p50'], ' ms', 1)}; status out before the command: {S['status_known_before']}/{S['commands']}",
                     "p50 ≤ direct + 2 ms", met(S["added_p50"] is not None and S["added_p50"] <= 2.0)))
    if "command_round_trip" in F:
        C = F["command_round_trip"]
        rows.append(("command status p50 (diagnostic)", f"{fmt(C['status_bridge_p50'], ' ms', 2)}",
                     f"direct inspect {fmt(C['status_direct_p50'], ' ms', 2)}; not_found (no Docker call) "
                     f"{fmt(C['not_found_p50'], ' ms', 2)}; broker echo {fmt(C['echo_p50'], ' ms', 2)}", "—", "—"))
    if "command_default_broker" in F:
        D = F["command_default_broker"]
        worst = max(v for v in (D["pause_p50"], D["unpause_p50"]) if v is not None) if D["pause_p50"] else None
        rows.append(("command p50, default mosquitto", f"pause {fmt(D['pause_p50'], '', 2)}, unpause {fmt(D['unpause_p50'], ' ms', 2)}",
                     "a stock broker (set_tcp_nodelay false): its Nagle holds each small send for a delayed ACK; "
                     "config/mosquitto/mosquitto.conf sets it true",
                     "p50 ≤ 50 ms", met(worst is not None and worst <= 50)))
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
        MI = F.get("memory_image", {})
        if MI:
            if "rss_mib" in MI:
                rows.append((f"memory in the image ({MI.get('containers')} watched)",
                             f"RSS {fmt(MI['rss_mib'], ' MiB')} (HWM {fmt(MI['hwm_mib'], ' MiB')})",
                             f"anon {fmt(MI['rss_anon_mib'], ' MiB')}, file-backed {fmt(MI['rss_file_mib'], ' MiB')}; "
                             f"`make image`, {fmt(MI.get('image_mb'), ' MB')}, docker run as docs/install.md; "
                             + ("GNUTLS_NO_IMPLICIT_INIT=1 (the image sets it)" if MI.get("gnutls_no_implicit_init")
                                else "without GNUTLS_NO_IMPLICIT_INIT"), "—", "—"))
            else:
                rows.append(("memory in the image", "not measured", MI.get("not_measured", ""), "—", "—"))
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
    if "reconnect" in F:
        R = F["reconnect"]
        rows.append((f"reconnect after a broker restart ({len(R['back_ms'])} outages of "
                     f"{', '.join(str(o) for o in R['outage_s'])} s)",
                     f"back {fmt(R['p50_ms'], '', 0)} / {fmt(R['max_ms'], ' ms', 0)} (p50 / max) after the broker listened",
                     "a fresh subscriber sees the bridge's retained online",
                     "≤ 3 s (backoff cap 2 s + connect)", met(R["max_ms"] is not None and R["max_ms"] <= 3000)))
    if "proxmox" in F:
        P = F["proxmox"]
        what = f"{P.get('guests', P.get('cts'))} guests ({P.get('cts')} CTs + {P.get('vms', 0)} VMs)"
        if "not_measured" in P:
            rows.append((f"Proxmox polling ({what})", "not measured", P["not_measured"][:60],
                         "2 req/interval + 1 per changed guest", "—"))
        else:
            polls_ok = (abs(P["cluster_resources"] - P["expected_polls"]) <= 2
                        and abs(P["cluster_tasks"] - P["expected_polls"]) <= 2)
            per_guest_ok = P["status_current"] == P["changed_guests"]
            extra = sum(P["other_requests"].values())
            rows.append((f"Proxmox polling ({what}, 2 s, lag {P['lag_s']} s, {P['seconds']:.0f} s)",
                         f"{P['cluster_resources']} /cluster/resources + {P['cluster_tasks']} /cluster/tasks, "
                         f"{P['status_current']} status/current, {extra} other; CPU {P['cpu_percent']:.2f} %",
                         f"expected {P['expected_polls']:.0f} each + {P['changed_guests']} (changes); "
                         f"{P['events_delivered']}/{P['changed_guests']} events; "
                         f"simulator CPU {P['simulator_cpu_percent']:.1f} %",
                         "2 req/interval + 1 per changed guest", met(polls_ok and per_guest_ok and not extra)))
            interval_ms = P["poll_interval_s"] * 1000
            t50, t99 = P["task_delay_p50_ms"], P["task_delay_p99_ms"]
            rows.append(("Proxmox event after a change made through Proxmox (GUI task)",
                         f"{fmt(t50, '', 0)} / {fmt(t99, ' ms', 0)} (p50 / p99)",
                         f"{len(P['task_delay_ms'])} changes, CTs and VMs, from /cluster/tasks",
                         f"≤ interval + 1 s ({interval_ms + 1000} ms)",
                         met(t99 is not None and t99 <= interval_ms + 1000)))
            g50, g99 = P["guest_delay_p50_ms"], P["guest_delay_p99_ms"]
            rows.append(("Proxmox event after a change inside the guest (no task)",
                         f"{fmt(g50, '', 0)} / {fmt(g99, ' ms', 0)} (p50 / p99)",
                         f"{len(P['guest_delay_ms'])} changes, only pvestatd tells",
                         f"≤ lag + interval ({P['lag_s'] * 1000 + interval_ms} ms)",
                         met(g99 is not None and g99 <= P["lag_s"] * 1000 + interval_ms)))
    if "idle_timers" in F:
        T = F["idle_timers"]
        ok = T["p99_s"] is not None and T["p99_s"] <= 1.0 and not T["early"]
        rows.append((f"idle timer ({T['containers']} containers, {T['timeout_s']} s, last {T.get('stagger', 'start')} "
                     f"{T.get('per_s', T.get('start_rate_per_s'))}/s)",
                     f"stopped {fmt(T['p50_s'], '', 2)} / {fmt(T['p99_s'], '', 2)} / {fmt(T['max_s'], ' s', 2)} "
                     "(p50 / p99 / max) after last_activity + timeout",
                     (f"the bridge's POST stop {fmt(T['post_stop_p50_s'], '', 2)} / {fmt(T['post_stop_p99_s'], ' s', 2)}, "
                      if "post_stop_p50_s" in T else "")
                     + f"Docker's kill event {fmt(T['kill_p50_s'], '', 2)} / {fmt(T['kill_p99_s'], ' s', 2)} (p50 / p99); "
                     f"{T['missing']} never slept, {T['early']} early (min {fmt(T['min_s'], ' s', 2)})",
                     "p99 ≤ 1 s, none early", met(ok)))
    if "touches" in F and "touching" in F["touches"]:
        T = F["touches"]
        I, W = T["idle"], T["touching"]
        rows.append((f"touches ({T['containers']} idle-managed, {T['rate_per_s']}/s, {W['seconds']:.0f} s)",
                     f"CPU {W['cpu_percent']:.2f} %, RSS {fmt(W['rss_mib_max'], ' MiB')} (max)",
                     f"no touches: CPU {I['cpu_percent']:.2f} %, RSS {fmt(I['rss_mib_max'], ' MiB')}; "
                     f"{T['touches_seen_in_idle_state']}/{T['touched_containers']} touched containers' idle state moved",
                     "—", "—"))
        rows.append(("Engine API requests for touches",
                     f"{W['requests']} during {W['touches']} touches",
                     f"{I['requests']} in as long without touches; {T['startup_requests']} at start-up; a `status` "
                     f"command: {len(T.get('proxy_check_status_command_requests', []))} (the proxy's check)",
                     "0 per touch", met(W["requests"] == 0 and T["touches_seen_in_idle_state"] == T["touched_containers"] > 0)))
    if "wake" in F:
        K = F["wake"]
        limit = K["health_interval_s"] * 1000 + 500
        rows.append((f"wake → ready ({K['wakes']}, healthcheck every {K['health_interval_s']:.0f} s)",
                     f"overhead {fmt(K['overhead_p50_ms'], '', 0)} / {fmt(K['overhead_p99_ms'], ' ms', 0)} (p50 / p99) "
                     f"over the container's own start → healthy",
                     f"reply {fmt(K['bridge_p50_ms'], '', 0)} / {fmt(K['bridge_p99_ms'], ' ms', 0)}; own (its POST start → "
                     f"healthy event) {fmt(K['own_p50_ms'], ' ms', 0)}; command → POST start {fmt(K['front_p50_ms'], ' ms', 0)}, "
                     f"healthy → reply {fmt(K['back_p50_ms'], '', 0)} / {fmt(K['back_p99_ms'], ' ms', 0)}; "
                     f"direct start → healthy (polled) {fmt(K['direct_p50_ms'], ' ms', 0)}; {K['not_ready']} not ready",
                     f"overhead p50 ≤ interval + 0.5 s", met(K["overhead_p50_ms"] is not None and K["overhead_p50_ms"] <= limit)))
    if "startup" in F:
        S = F["startup"]
        rows.append((f"start-up ({S['containers']} containers)",
                     f"{fmt(S['all_ms'], ' ms', 0)}{fmt_spread(S['all_ms_spread'], 0)} to all statuses",
                     f"online after {fmt(S['online_ms'], ' ms', 0)}{fmt_spread(S['online_ms_spread'], 0)}",
                     "≤ 200 ms", met(S["all_ms"] <= 200)))
    head = ("figure", "measured: over all samples of all rounds [min–max of the rounds]", "beside it", "target", "met")
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
    if results.get("targets"):
        block += ["", f"Targets: {len(results['targets']) - results['targets_missed']} of {len(results['targets'])} met.", ""]
        block += [f"- {line}" for line in results["targets"]]
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
        elif role == "dockerproxy":
            counting_proxy(sys.argv[3], sys.argv[4])
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
    bench.results["targets_missed"], bench.results["targets"] = target_lines(rows)
    bench.results["run"] = bench.run
    bench.results["settings"] = {"quick": QUICK, "rounds": ROUNDS, "events": EVENTS, "commands": COMMANDS,
                                 "containers": CONTAINERS, "startups": STARTUPS, "idle_seconds": IDLE_SECONDS,
                                 "pve_seconds": PVE_SECONDS, "pve_guests": PVE_GUESTS, "pve_lag": PVE_LAG, "only": sorted(ONLY),
                                 "broker_set_tcp_nodelay": BROKER_NODELAY, "command_qos": COMMAND_QOS,
                                 "slow_commands": SLOW_COMMANDS, "idle_containers": IDLE_CONTAINERS,
                                 "idle_rate": IDLE_RATE, "idle_stagger": IDLE_STAGGER, "touch_containers": TOUCH_CONTAINERS,
                                 "touch_rate": TOUCH_RATE, "touch_seconds": TOUCH_SECONDS, "wakes": WAKES}
    # A partial run (BENCH_ONLY) stays in bench/out: only a whole run is published.
    publish = not ONLY or os.environ.get("BENCH_PUBLISH", "") not in ("", "0")
    with open(os.path.join(bench.dir, "results.json"), "w") as f:
        json.dump(jsonable(bench.results), f, indent=1, default=str)
        f.write("\n")
    with open(os.path.join(bench.dir, "samples.json"), "w") as f:
        json.dump(jsonable(bench.samples), f)
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
    # One line per target, met or not; a target not met (or not measured) makes the exit status non-zero.
    missed, lines = bench.results["targets_missed"], bench.results["targets"]
    print()
    for line in lines:
        print(line)
    if missed:
        print(f"{missed} of {len(lines)} targets not met: exit status 3")
        return 3
    print(f"all {len(lines)} targets met")
    return 0


def target_lines(rows):
    """(how many targets are not met, one line per target)."""
    lines, missed = [], 0
    for figure, measured, _, target, met in rows:
        if target == "—":
            continue
        ok = met == "yes"
        missed += not ok
        verdict = "met" if ok else ("NOT MEASURED" if met == "—" else f"NOT MET ({met})" if met not in ("NO", "no") else "NOT MET")
        lines.append(f"target {verdict}: {figure}: {target} (measured {measured})")
    return missed, lines


def jsonable(v):
    """inf (a sample that never came) as the string "inf": results.json stays standard JSON."""
    if isinstance(v, float) and v == INF:
        return "inf"
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


if __name__ == "__main__":
    sys.exit(main())
