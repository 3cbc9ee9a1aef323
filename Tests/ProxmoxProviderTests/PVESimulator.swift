import Foundation
import HTTPClient
import IdlewatcherCore
import IdlewatcherTesting
import Logging
import ProxmoxProvider
import Synchronization
import Testing

/// One `tools/pve-simulator/pve_simulator.py` process, started for one test and stopped after it.
final class PVESimulator: Sendable {
    enum Transport: Sendable {
        /// HTTPS with a certificate made at start; `caFile` holds it.
        case https
        case http
    }

    static let tokenID = "root@pam!bridge"
    static let user = "root@pam"
    static let password = "sim-password-7f3e"

    let transport: Transport
    /// `https://127.0.0.1:PORT` or `http://…`.
    let url: String
    let port: Int
    /// The simulator's certificate (HTTPS only): what a user puts into `ca_file`.
    let caFile: String?
    /// A fresh secret per simulator, so a test can look for it in messages and logs.
    let secret: String
    let directory: String
    private let child: ChildProcess
    private let control: HTTPClient

    private init(
        transport: Transport, url: String, port: Int, caFile: String?, secret: String, directory: String, child: ChildProcess
    ) {
        self.transport = transport
        self.url = url
        self.port = port
        self.caFile = caFile
        self.secret = secret
        self.directory = directory
        self.child = child
        self.control = HTTPClient(configuration: HTTPClientConfiguration(baseURL: url, caFile: caFile))
    }

    /// Starts a simulator and waits (with a deadline) for its "listening" line.
    static func start(
        _ transport: Transport = .https, cts: Int = 3, nodes: [String] = ["pve1"], port: Int = 0,
        secret: String = UUID().uuidString.lowercased(), extra: [String] = []
    ) async throws -> PVESimulator {
        let directory = try makeTemporaryDirectory("pve-sim").path
        var arguments = [
            "python3", repositoryRoot.path + "/tools/pve-simulator/pve_simulator.py", "--port", String(port), "--quiet",
            "--cts", String(cts), "--nodes", nodes.joined(separator: ","), "--auth-delay", "0.1", "--task-seconds", "0.1",
            "--lock-timeout", "2", "--token", "\(tokenID)=\(secret)", "--user", user, "--password", password,
        ]
        let caFile = directory + "/ca.pem"
        switch transport {
        case .https: arguments += ["--ca-out", caFile]
        case .http: arguments += ["--http"]
        }
        let child = try ChildProcess(arguments + extra, log: URL(fileURLWithPath: directory + "/simulator.log"))
        var line: Substring? = nil
        do {
            try await eventually("the simulator's listening line; log:\n\(child.output)", timeout: .seconds(20)) {
                if !child.isRunning { throw TestSupportError("the simulator exited: \(child.output)") }
                line = child.output.split(separator: "\n").first { $0.hasPrefix("pve-simulator listening on ") }
                return line != nil
            }
        } catch {
            await child.terminate(signal: SIGKILL)
            throw error
        }
        let url = String(line!.split(separator: " ").last!)
        let port = Int(url.split(separator: ":").last!)!
        return PVESimulator(
            transport: transport, url: url, port: port, caFile: transport == .https ? caFile : nil, secret: secret,
            directory: directory, child: child)
    }

    /// Stops the simulator (SIGTERM, then SIGKILL past a deadline).
    func stop() async {
        await child.terminate(timeout: .seconds(5))
        control.shutdown()
    }

    /// What the simulator wrote (for failure messages).
    var log: String { child.output }

    // MARK: runtimes

    enum Auth {
        case token
        case badToken
        case ticket
        case badPassword
    }

    /// A runtime for this simulator, as `Application` builds one from the config.
    func runtime(
        auth: Auth = .token, trust: Bool = true, insecure: Bool = false, nodes: [String] = [], vmids: [Int] = [],
        idPrefix: String = "", pollInterval: Duration = .milliseconds(300), ticketRenewal: Duration = .seconds(3600),
        taskTimeout: Duration = .seconds(20), requestTimeout: Duration = .seconds(10), logs: LogRecorder? = nil,
        types: Set<GuestType> = [.lxc]
    ) throws -> ProxmoxRuntime {
        let credentials: ProxmoxEndpointConfiguration.Credentials
        switch auth {
        case .token: credentials = .token(id: Self.tokenID, secret: secret)
        case .badToken: credentials = .token(id: Self.tokenID, secret: "not-\(secret)")
        case .ticket: credentials = .password(username: "root", password: Self.password, realm: "pam")
        case .badPassword: credentials = .password(username: Self.user, password: "wrong-\(secret)", realm: nil)
        }
        var configuration = ProxmoxEndpointConfiguration(
            url: url, credentials: credentials, caFile: trust ? caFile : nil, insecureSkipVerify: insecure, nodes: nodes,
            vmids: vmids, pollInterval: pollInterval, idPrefix: idPrefix, requestTimeout: requestTimeout,
            taskTimeout: taskTimeout, ticketRenewal: ticketRenewal)
        configuration.types = types
        let recorder = logs ?? LogRecorder()
        var logger = Logger(label: "proxmox-test", factory: { _ in RecordingLogHandler(recorder) })
        logger.logLevel = .debug
        return try ProxmoxRuntime(configuration: configuration, logger: logger)
    }

    // MARK: the control API (/_sim/…)

    @discardableResult
    func sim(_ method: String, _ path: String, _ body: [String: Any] = [:]) async throws -> Any {
        let data = try JSONSerialization.data(withJSONObject: body)
        let response = try await control.send(
            HTTPRequest(
                method: method, path: "/_sim" + path, headers: [("Content-Type", "application/json")],
                body: method == "GET" ? nil : Array(data), timeout: .seconds(10)))
        guard response.status == 200 else {
            throw TestSupportError("\(method) /_sim\(path) → \(response.status): \(response.bodyText)")
        }
        return try JSONSerialization.jsonObject(with: Data(response.body))
    }

    /// Changes a CT "from outside" (as the GUI or a shutdown inside the CT would): no task.
    func change(_ vmid: Int, _ fields: [String: Any]) async throws {
        try await sim("POST", "/ct/\(vmid)", fields)
    }

    /// The simulator's own view of a CT (`status`, `suspended`, …).
    func ct(_ vmid: Int) async throws -> [String: Any] {
        try await sim("GET", "/ct/\(vmid)") as! [String: Any]
    }

    /// The task types run for a CT, newest first.
    func taskTypes(_ vmid: Int) async throws -> [String] {
        let list = try await sim("GET", "/tasks?vmid=\(vmid)") as! [[String: Any]]
        return list.compactMap { $0["type"] as? String }
    }

    /// Requests served, by route template (`GET /cluster/resources`).
    func stats() async throws -> [String: Int] {
        let json = try await sim("GET", "/stats") as! [String: Any]
        return (json["requests"] as? [String: Int]) ?? [:]
    }

    func resetStats() async throws { try await sim("POST", "/stats/reset") }
}

/// Runs `body` with a fresh simulator and always stops it.
func withSimulator(
    _ transport: PVESimulator.Transport = .https, cts: Int = 3, nodes: [String] = ["pve1"], extra: [String] = [],
    _ body: (PVESimulator) async throws -> Void
) async throws {
    let sim = try await PVESimulator.start(transport, cts: cts, nodes: nodes, extra: extra)
    do {
        try await body(sim)
    } catch {
        print("--- simulator log ---\n\(sim.log.suffix(4000))")
        await sim.stop()
        throw error
    }
    await sim.stop()
}

// MARK: logs

/// Every log line a runtime wrote, with its metadata, to look for secrets.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    init(_ recorder: LogRecorder) { self.recorder = recorder }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let meta = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        recorder.append("\(event.level) \(event.message) [\(meta)]")
    }
}

// MARK: watching

/// Everything a runtime's `watch` handed on, with when it arrived.
final class UpdateRecorder: Sendable {
    private let updates = Mutex<[(RuntimeUpdate, ContinuousClock.Instant)]>([])

    func append(_ u: RuntimeUpdate) { updates.withLock { $0.append((u, .now)) } }

    var all: [RuntimeUpdate] { updates.withLock { $0.map(\.0) } }
    var count: Int { updates.withLock { $0.count } }
    var resyncs: Int { all.filter { $0 == .resync }.count }
    var unavailable: [BridgeError] {
        all.compactMap { if case .unavailable(let e) = $0 { return e } else { return nil } }
    }

    /// The events of `id`, in order.
    func events(_ id: String) -> [LifecycleEvent] {
        all.compactMap { if case .event(let e) = $0, e.id == id { return e } else { return nil } }
    }

    func actions(_ id: String) -> [String] { events(id).map(\.action) }

    /// When the first update at or after `index` that matches arrived.
    func arrival(after index: Int, where match: (RuntimeUpdate) -> Bool) -> ContinuousClock.Instant? {
        updates.withLock { u in u.dropFirst(index).first { match($0.0) }?.1 }
    }
}

/// Runs `runtime.watch` in the background until `body` returns.
func watching(
    _ runtime: ProxmoxRuntime, _ body: (UpdateRecorder) async throws -> Void
) async throws {
    let recorder = UpdateRecorder()
    let task = Task { await runtime.watch { recorder.append($0) } }
    defer { task.cancel() }
    try await body(recorder)
    task.cancel()
    await task.value
}
