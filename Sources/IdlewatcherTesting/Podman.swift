import Foundation

/// The real Podman of this machine: its API service on /run/podman/podman.sock (started by
/// scripts/ensure-podman.sh if it is not answering), and containers the test creates under a
/// prefix of its own and removes at the end. Never touches any other.
///
/// docs/podman-notes.md has what Podman 4.3 answers where it differs from Docker. For tests:
/// health checks do not run by themselves here (Podman schedules them with systemd timers, and
/// there is no systemd): `runHealthcheck` runs one, `driveHealthchecks` runs them on a timer.
public final class PodmanFixture: @unchecked Sendable {
    // @unchecked: `created` is only touched by the test's own task.
    public static let image = "localhost/idlewatcher-test/busybox:latest"
    public static let socketPath = "/run/podman/podman.sock"
    /// The containers.conf drop-in with rlimits this sandbox accepts (written by the script).
    static let ulimitsDropIn = "/etc/containers/containers.conf.d/idlewatcher-ulimits.conf"
    public let prefix: String
    private var created: [String] = []

    public init() async throws {
        prefix = "iwp\(UUID().uuidString.prefix(6).lowercased())"
        try await Self.ensureService()
    }

    /// Whether the `podman` command is installed (tests that need Podman can skip without it;
    /// `make test` installs it).
    public static var isInstalled: Bool {
        (try? IdlewatcherTesting.run(["sh", "-c", "command -v podman"]))?.status == 0
    }

    /// Makes sure the API service answers, the test image exists and containers get rlimits this
    /// sandbox accepts; runs scripts/ensure-podman.sh (installs podman, writes the drop-in,
    /// imports the image, starts `podman system service`) if anything is missing, and waits.
    public static func ensureService() async throws {
        if ping(), FileManager.default.fileExists(atPath: ulimitsDropIn), imageExists() { return }
        let script = repositoryRoot.appendingPathComponent("scripts/ensure-podman.sh").path
        let (status, output) = try IdlewatcherTesting.run([script])
        if status != 0 { throw TestSupportError("scripts/ensure-podman.sh failed (\(status)): \(output)") }
        try await eventually("podman to answer on \(socketPath)", timeout: .seconds(60)) { ping() }
        if !imageExists() { throw TestSupportError("scripts/ensure-podman.sh ran but \(image) is missing: \(output)") }
    }

    /// Whether the API service answers `GET /_ping` with `OK`.
    public static func ping() -> Bool {
        (try? IdlewatcherTesting.run(["curl", "-sf", "--max-time", "2", "--unix-socket", socketPath, "http://localhost/_ping"]))?
            .output == "OK"
    }

    static func imageExists() -> Bool {
        (try? IdlewatcherTesting.run(["podman", "image", "exists", image]))?.status == 0
    }

    /// `podman run -d` a container named `<prefix>-<name>`; returns the full name.
    /// - Parameters:
    ///   - start: false for `podman create` (state `created`).
    ///   - network: `none` unless a test needs the host's loopback (`host`).
    ///   - options: more `podman run` options (`-v`, `-e`, `--health-cmd`, …).
    @discardableResult
    public func run(
        _ name: String, labels: [String: String] = [:], command: [String] = ["/bin/sleep", "100000"], start: Bool = true,
        network: String = "none", options: [String] = []
    ) throws -> String {
        let full = "\(prefix)-\(name)"
        var args = ["podman", start ? "run" : "create"]
        if start { args.append("-d") }
        args += ["--name", full, "--network", network] + options
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { args += ["--label", "\(k)=\(v)"] }
        args.append(Self.image)
        args += command
        let (status, output) = try IdlewatcherTesting.run(args)
        // Even when it fails, `podman run` may have created the container: remove it at the end.
        created.append(full)
        if status != 0 { throw TestSupportError("\(args.joined(separator: " ")) failed: \(output)") }
        return full
    }

    /// A container that stops at once on SIGTERM.
    @discardableResult
    public func runQuickStopper(_ name: String, labels: [String: String] = [:], start: Bool = true) throws -> String {
        try run(name, labels: labels, command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"], start: start)
    }

    /// A container with a health check: `healthCommand` runs with `/bin/sh -c` in the container
    /// (busybox: `sh`, `sleep`, `echo`, `cat`; `cat /healthy` fails until a test creates the file
    /// with `exec(name, "/bin/sh", "-c", "echo ok > /healthy")`).
    ///
    /// Without systemd the checks never run by themselves: the status stays `starting` (podman
    /// logs "unable to get systemd connection to add healthchecks") until `runHealthcheck`,
    /// `driveHealthchecks`, or `GET /libpod/containers/{name}/healthcheck` runs one.
    @discardableResult
    public func runWithHealthcheck(
        _ name: String, healthCommand: String, interval: String = "1s", retries: Int = 1, timeout: String = "5s",
        startPeriod: String = "0s", labels: [String: String] = [:], command: [String] = ["/bin/sleep", "100000"],
        start: Bool = true
    ) throws -> String {
        try run(
            name, labels: labels, command: command, start: start,
            options: [
                "--health-cmd", healthCommand, "--health-interval", interval, "--health-retries", String(retries),
                "--health-timeout", timeout, "--health-start-period", startPeriod,
            ])
    }

    /// Runs the container's health check once (`podman healthcheck run`), as the systemd timer
    /// would; true if it passed. Podman then records the result in `State.Health` and sends a
    /// `health_status` event.
    @discardableResult
    public func runHealthcheck(_ name: String) -> Bool {
        (try? IdlewatcherTesting.run(["podman", "healthcheck", "run", name]))?.status == 0
    }

    /// Runs the container's health check every `interval` until the task is cancelled (or the
    /// container is gone): what the systemd timer does where there is one.
    public func driveHealthchecks(_ name: String, every interval: Duration = .seconds(1)) -> Task<Void, Never> {
        Task.detached {
            while !Task.isCancelled {
                let r = try? IdlewatcherTesting.run(["podman", "healthcheck", "run", name])
                if let output = r?.output, output.contains("no such container") || output.contains("no container with") { return }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// The container's health as Podman records it (`starting`, `healthy`, `unhealthy`; empty
    /// without a health check), or nil if the container is gone.
    public func health(_ name: String) -> String? {
        guard let r = try? IdlewatcherTesting.run(["podman", "inspect", "-f", "{{.State.Health.Status}}", name]), r.status == 0
        else { return nil }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the podman CLI as a person would.
    @discardableResult
    public func cli(_ args: String...) throws -> String {
        try cli(args)
    }

    /// Same, with the arguments in an array.
    @discardableResult
    public func cli(_ args: [String]) throws -> String {
        let (status, output) = try IdlewatcherTesting.run(["podman"] + args)
        if status != 0 { throw TestSupportError("podman \(args.joined(separator: " ")) failed: \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs a command in the container (`podman exec`).
    @discardableResult
    public func exec(_ name: String, _ command: String...) throws -> String {
        try cli(["exec", name] + command)
    }

    /// The container's state as Podman reports it (`created`, `running`, `paused`, `stopping`,
    /// `exited`, …), or nil if gone.
    public func state(_ name: String) -> String? {
        guard let r = try? IdlewatcherTesting.run(["podman", "inspect", "-f", "{{.State.Status}}", name]), r.status == 0 else {
            return nil
        }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func startedAt(_ name: String) -> String? {
        guard let r = try? IdlewatcherTesting.run(["podman", "inspect", "-f", "{{.State.StartedAt}}", name]), r.status == 0 else {
            return nil
        }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func track(_ name: String) { created.append(name) }

    /// Removes every container this fixture created. `-t 0`: `podman rm -f` would otherwise give
    /// each container 10 s to stop on SIGTERM (`docker rm -f` kills at once); `--ignore`: some may
    /// be gone already.
    public func cleanUp() {
        guard !created.isEmpty else { return }
        _ = try? IdlewatcherTesting.run(["podman", "rm", "-f", "--ignore", "-t", "0"] + created)
        created.removeAll()
    }

    deinit { cleanUp() }
}
