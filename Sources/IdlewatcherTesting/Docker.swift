import Foundation

/// The real Docker engine of this machine (started if it is not running), and containers the
/// test creates under a prefix of its own and removes at the end. Never touches any other.
public final class DockerFixture: @unchecked Sendable {
    // @unchecked: `created` is only touched by the test's own task.
    public static let image = "idlewatcher-test/busybox:latest"
    public let prefix: String
    private var created: [String] = []

    public init() async throws {
        prefix = "iwt\(UUID().uuidString.prefix(6).lowercased())"
        try await Self.ensureEngine()
        try Self.ensureImage()
    }

    /// Pings the engine; starts `dockerd` if nothing answers, and waits for it.
    public static func ensureEngine() async throws {
        if ping() { return }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("dockerd-test.log")
        _ = try IdlewatcherTesting.run(["sh", "-c", "setsid dockerd >\(log.path) 2>&1 < /dev/null &"])
        try await eventually("dockerd to answer on /var/run/docker.sock", timeout: .seconds(60)) { ping() }
    }

    public static func ping() -> Bool {
        (try? IdlewatcherTesting.run([
            "curl", "-sf", "--max-time", "2", "--unix-socket", "/var/run/docker.sock", "http://localhost/_ping",
        ]))?.output == "OK"
    }

    /// Builds the tiny busybox image from busybox-static if it is missing (no registry needed).
    public static func ensureImage() throws {
        if (try IdlewatcherTesting.run(["docker", "image", "inspect", image])).status == 0 { return }
        let script = """
            set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/
            for c in sh sleep echo cat; do ln -s busybox $d/bin/$c; done
            tar -C $d -c . | docker import - \(image) >/dev/null
            """
        let (status, output) = try IdlewatcherTesting.run(["sh", "-c", script])
        if status != 0 { throw TestSupportError("cannot build the test image: \(output)") }
    }

    /// `docker run -d` a container named `<prefix>-<name>`; returns the full name.
    /// - Parameters:
    ///   - network: `none` unless a test needs the host's loopback (`host`).
    ///   - options: more `docker run` options (`-v`, `-e`, …).
    @discardableResult
    public func run(
        _ name: String, labels: [String: String] = [:], command: [String] = ["/bin/sleep", "100000"], start: Bool = true,
        network: String = "none", options: [String] = []
    ) throws -> String {
        let full = "\(prefix)-\(name)"
        var args = ["docker", start ? "run" : "create"]
        if start { args.append("-d") }
        args += ["--name", full, "--network", network] + options
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { args += ["--label", "\(k)=\(v)"] }
        args.append(Self.image)
        args += command
        let (status, output) = try IdlewatcherTesting.run(args)
        if status != 0 { throw TestSupportError("docker \(args.joined(separator: " ")) failed: \(output)") }
        created.append(full)
        return full
    }

    /// A container that stops at once on SIGTERM.
    @discardableResult
    public func runQuickStopper(_ name: String, labels: [String: String] = [:], start: Bool = true) throws -> String {
        try run(name, labels: labels, command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"], start: start)
    }

    /// Runs the docker CLI as a person would.
    @discardableResult
    public func cli(_ args: String...) throws -> String {
        let (status, output) = try IdlewatcherTesting.run(["docker"] + args)
        if status != 0 { throw TestSupportError("docker \(args.joined(separator: " ")) failed: \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The container's state as Docker reports it (`running`, `paused`, `exited`, …), or nil if gone.
    public func state(_ name: String) -> String? {
        guard let r = try? IdlewatcherTesting.run(["docker", "inspect", "-f", "{{.State.Status}}", name]), r.status == 0 else {
            return nil
        }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func startedAt(_ name: String) -> String? {
        guard let r = try? IdlewatcherTesting.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", name]), r.status == 0 else {
            return nil
        }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func track(_ name: String) { created.append(name) }

    /// Removes every container this fixture created.
    public func cleanUp() {
        guard !created.isEmpty else { return }
        _ = try? IdlewatcherTesting.run(["docker", "rm", "-f"] + created)
        created.removeAll()
    }

    deinit { cleanUp() }
}

/// One lifecycle event as Docker itself records it.
public struct DockerEvent: Sendable, Equatable, CustomStringConvertible {
    public var action: String
    /// Docker's `timeNano`, as the bridge must print it: RFC 3339 UTC with microseconds.
    public var time: String
    public var description: String { "\(action)@\(time)" }

    public init(action: String, time: String) {
        self.action = action
        self.time = time
    }

    /// The actions the contract says the bridge publishes for container events.
    public static let contractActions: Set<String> = [
        "create", "start", "restart", "pause", "unpause", "kill", "stop", "die", "destroy", "oom", "rename",
    ]

    /// Docker's `timeNano` printed as the contract prints event times (`…T21:55:00.123456Z`).
    public static func rfc3339(nanoseconds: Int64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        let micros = Int((nanoseconds % 1_000_000_000) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micros)
    }
}

/// Docker's own record of one container's events (`docker events`), the ground truth a test
/// holds the bridge's events against: the same events, one for one, in the same order.
public final class DockerEventRecorder: @unchecked Sendable {
    // @unchecked: only immutable values are stored; reads parse the child's log file.
    private let child: ChildProcess
    private let container: String

    /// Starts recording the events of `container` from `since` (a moment before the first
    /// action of interest: `docker events` replays from there, so nothing is missed while the
    /// CLI connects).
    public init(container: String, since: Date) throws {
        let dir = try makeTemporaryDirectory("docker-events")
        child = try ChildProcess(
            [
                "docker", "events", "--since", String(format: "%.6f", since.timeIntervalSince1970), "--filter", "type=container",
                "--filter", "container=\(container)", "--format",
                "{{.Action}}\t{{.TimeNano}}\t{{index .Actor.Attributes \"name\"}}",
            ], log: dir.appendingPathComponent("events.log"))
        self.container = container
    }

    /// The container events recorded so far whose action the contract names, in Docker's order.
    public var events: [DockerEvent] {
        child.output.split(separator: "\n").compactMap { line in
            // Docker's `container=` filter also matches names it is a part of (`web` matches
            // `web2`): only this container's own events count.
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 3, f[2] == container, DockerEvent.contractActions.contains(String(f[0])), let nanos = Int64(f[1])
            else { return nil }
            return DockerEvent(action: String(f[0]), time: DockerEvent.rfc3339(nanoseconds: nanos))
        }
    }

    public func stop() { child.signal(SIGKILL) }

    deinit { child.signal(SIGKILL) }
}
