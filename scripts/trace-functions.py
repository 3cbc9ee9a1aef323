#!/usr/bin/env python3
"""Run a program under ptrace with a one-shot breakpoint (int3) on the entry of every function of
its .text, and print the functions it enters, in the order they are first entered (one name per
line; aliases of one address on consecutive lines).

    trace-functions.py [--seconds N] [--then 'shell command' --at S] -- PROGRAM ARGS...

Each breakpoint is removed at its first hit, so the program runs at nearly full speed once its
paths are warm. Threads are followed (PTRACE_O_TRACECLONE); a program that executes a new image
(or forks: the child would inherit the breakpoints) is not supported. Needs the binary's symbol
table (not stripped). x86_64 Linux only.
"""
import argparse, ctypes, os, signal, subprocess, sys, time, collections

PTRACE_TRACEME, PTRACE_CONT, PTRACE_GETREGS, PTRACE_SETREGS = 0, 7, 12, 13
PTRACE_SETOPTIONS = 0x4200
PTRACE_O_TRACECLONE, PTRACE_O_TRACEEXEC, PTRACE_O_EXITKILL = 0x8, 0x10, 0x100000
PTRACE_EVENT_EXEC = 4
WALL = 0x40000000
RIP = 16  # index of rip in struct user_regs_struct

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
Regs = ctypes.c_ulong * 27


def ptrace(req, pid, addr=0, data=0):
    if libc.ptrace(req, pid, addr, data) == -1:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace({req}, {pid}): {os.strerror(e)}")


def functions(path):
    """(address, names) of the defined functions in .text, from the symbol table."""
    out = subprocess.check_output(["nm", "--defined-only", "-S", path], text=True, errors="replace")
    by_addr = collections.defaultdict(list)
    for line in out.splitlines():
        p = line.split(maxsplit=3)
        if len(p) == 4 and p[2] in ("T", "t", "W"):
            by_addr[int(p[0], 16)].append(p[3])
    sec = subprocess.check_output(["readelf", "-SW", path], text=True)
    for l in sec.splitlines():
        f = l.replace("[ ", "[").split()
        if len(f) > 5 and f[1] == ".text":
            start, size = int(f[3], 16), int(f[5], 16)
    return {a: n for a, n in by_addr.items() if start <= a < start + size}, start, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--then", default=None, help="shell command run while the program runs")
    ap.add_argument("--at", type=float, default=4)
    ap.add_argument("--log", default="/dev/null", help="the program's stdout and stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    exe = os.path.realpath(cmd[0])
    funcs, tstart, tsize = functions(exe)

    pid = os.fork()
    if pid == 0:
        ptrace(PTRACE_TRACEME, 0)
        log = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.execv(exe, cmd)
    _, st = os.waitpid(pid, WALL)
    assert os.WIFSTOPPED(st), st
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)
    base = None
    for l in open(f"/proc/{pid}/maps"):
        f = l.split()
        if len(f) >= 6 and f[5] == exe and int(f[2], 16) == 0:
            base = int(f[0].split("-")[0], 16)
            break
    mem = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    text = bytearray(os.pread(mem, tsize, base + tstart))
    orig = {}
    for addr in funcs:
        off = addr - tstart
        orig[addr] = text[off]
        text[off] = 0xCC
    os.pwrite(mem, bytes(text), base + tstart)
    print(f"{len(orig)} breakpoints", file=sys.stderr)

    order, pending = [], set(orig)
    threads = {pid}
    deadline = time.monotonic() + a.seconds
    then_at = time.monotonic() + a.at if a.then else None
    ptrace(PTRACE_CONT, pid, 0, 0)
    regs = Regs()
    while time.monotonic() < deadline:
        if then_at and time.monotonic() >= then_at:
            subprocess.Popen(a.then, shell=True)
            then_at = None
        try:
            tid, st = os.waitpid(-1, WALL | os.WNOHANG)
        except ChildProcessError:
            break
        if tid == 0:
            time.sleep(0.0005)
            continue
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            threads.discard(tid)
            if tid == pid:
                print(f"program ended: {st:#x}", file=sys.stderr)
                break
            continue
        sig = os.WSTOPSIG(st)
        deliver = 0
        if st >> 16 == PTRACE_EVENT_EXEC:
            # The breakpoints went with the old image.
            sys.exit("the program executed a new image; trace it so that it does not")
        elif st >> 16:  # clone event
            pass
        elif sig == signal.SIGTRAP:
            ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(regs))
            addr = regs[RIP] - 1 - base
            if addr in orig:
                if addr in pending:
                    pending.discard(addr)
                    os.pwrite(mem, bytes([orig[addr]]), base + addr)
                    order.append(addr)
                regs[RIP] -= 1
                ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(regs))
            else:
                deliver = sig
        elif sig == signal.SIGSTOP and tid not in threads:
            threads.add(tid)
        else:
            deliver = sig
        ptrace(PTRACE_CONT, tid, 0, deliver)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    print(f"{len(order)} functions entered", file=sys.stderr)
    for addr in order:
        for name in funcs[addr]:
            print(name)


if __name__ == "__main__":
    main()
