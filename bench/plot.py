"""The latency plot of the bench: event latency (bridge beside the floor) and command round
trips (bridge beside a direct Engine API call), as cumulative distributions.

Uses matplotlib when it is installed (make bench installs it with pip); otherwise draws the
same curves, without text, with a few lines of stdlib code so that a PNG is always written."""

import struct
import zlib


def _cdf(values):
    """A missing sample (inf) is left out of the curve but not of n: the curve then ends below 1."""
    n = len(values)
    v = sorted(x for x in values if x != float("inf"))
    return v, [(i + 1) / n for i in range(len(v))]


def plot(samples, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001
        _fallback(samples, path)
        return "stdlib fallback, no labels"

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def plain_log_axis(ax):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    for key, label, color in (("latency_floor_ms", "floor: plain Docker events client", "#888888"),
                              ("latency_bridge_ms", "bridge: MQTT subscriber", "#1f77b4")):
        v = samples.get(key) or []
        if v:
            x, y = _cdf(v)
            lost = len(v) - len(x)
            ax.step(x, y, where="post", label=f"{label} (n={len(v)}{f', {lost} never came' if lost else ''})", color=color)
    plain_log_axis(ax)
    ax.set_xlabel("Docker timeNano → received (ms, log scale)")
    ax.set_ylabel("fraction of pause/unpause events")
    ax.set_title("event latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)

    ax = axes[1]
    styles = (("command_pause_direct_ms", "pause: direct Engine API", "#ff7f0e", ":"),
              ("command_pause_readback_ms", "pause: direct + status read-back", "#ff7f0e", "--"),
              ("command_pause_bridge_ms", "pause: via the bridge", "#ff7f0e", "-"),
              ("command_unpause_direct_ms", "unpause: direct Engine API", "#2ca02c", ":"),
              ("command_unpause_readback_ms", "unpause: direct + status read-back", "#2ca02c", "--"),
              ("command_unpause_bridge_ms", "unpause: via the bridge", "#2ca02c", "-"))
    for key, label, color, ls in styles:
        v = samples.get(key) or []
        if v:
            x, y = _cdf(v)
            lost = len(v) - len(x)
            ax.step(x, y, where="post", label=label + (f" ({lost} unanswered)" if lost else ""), color=color, linestyle=ls)
    plain_log_axis(ax)
    ax.set_xlabel("command published → reply received (ms, log scale)")
    ax.set_ylabel("fraction of commands")
    ax.set_title("command round trip")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


def _fallback(samples, path, w=900, h=420):
    """Two CDFs (floor grey, bridge blue) on a log axis from 0.1 ms to 100 ms, no text."""
    import math

    px = [[(255, 255, 255)] * w for _ in range(h)]
    left, right, top, bottom = 40, w - 20, 20, h - 30

    def X(ms):
        ms = min(max(ms, 0.1), 100.0)
        return int(left + (math.log10(ms) + 1) / 3 * (right - left))

    def Y(f):
        return int(bottom - f * (bottom - top))

    for decade in (0.1, 1, 10, 100):
        for y in range(top, bottom + 1):
            px[y][X(decade)] = (210, 210, 210)
    for f in (0, 0.5, 1):
        for x in range(left, right + 1):
            px[Y(f)][x] = (210, 210, 210)
    for key, color in (("latency_floor_ms", (120, 120, 120)), ("latency_bridge_ms", (31, 119, 180))):
        v = samples.get(key) or []
        if not v:
            continue
        xs, ys = _cdf(v)
        if not xs:
            continue
        prev = (X(xs[0]), Y(0))
        for xv, yv in zip(xs, ys):
            cur = (X(xv), Y(yv))
            for x in range(min(prev[0], cur[0]), max(prev[0], cur[0]) + 1):
                for t in (0, 1):
                    px[prev[1] + t if prev[1] + t < h else prev[1]][x] = color
            for y in range(min(prev[1], cur[1]), max(prev[1], cur[1]) + 1):
                px[y][cur[0]] = color
            prev = cur
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in px)

    def chunk(t, data):
        return struct.pack("!I", len(data)) + t + data + struct.pack("!I", zlib.crc32(t + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
