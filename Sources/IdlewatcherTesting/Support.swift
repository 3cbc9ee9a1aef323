import Foundation

/// A test-support failure with a message saying what was waited for.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Polls `condition` until it holds or `timeout` passes. The way tests wait: for a condition,
/// with a deadline, never for a fixed time.
public func eventually<T>(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(10), every: Duration = .milliseconds(20),
    _ condition: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await condition() { return value }
        if ContinuousClock.now >= deadline { throw TestSupportError("timed out after \(timeout) waiting for \(what())") }
        try await Task.sleep(for: every)
    }
}

/// Same, for a Boolean condition.
public func eventually(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
) async throws {
    _ = try await eventually(what(), timeout: timeout) { try await condition() ? true : nil }
}

/// The repository's root folder (found from this file's path).
public let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url
}()

/// A fresh temporary folder.
public func makeTemporaryDirectory(_ prefix: String = "iwtest") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A TCP port that was free a moment ago.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:port.
public func isListening(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return rc == 0
}

/// Spawns `arguments` (looked up in PATH) with output to `outputPath`, a clean signal mask and
/// default signal dispositions. Foundation's `Process` passes on the spawning thread's blocked
/// signals, which leaves children deaf to SIGTERM and SIGALRM.
func spawn(
    _ arguments: [String], outputPath: String, inputPath: String = "/dev/null", environment: [String: String]? = nil
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
    defer {
        for p in argv { free(p) }
        for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, arguments[0], &actions, &attr, &argv, &envp)
    if rc != 0 { throw TestSupportError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
    return pid
}

/// Runs a command to completion and returns its exit status and combined output.
@discardableResult
public func run(
    _ arguments: [String], input: String? = nil, environment: [String: String]? = nil
) throws -> (status: Int32, output: String) {
    let dir = FileManager.default.temporaryDirectory
    let out = dir.appendingPathComponent("run-\(UUID().uuidString).out")
    var inputPath = "/dev/null"
    if let input {
        let inFile = dir.appendingPathComponent("run-\(UUID().uuidString).in")
        try input.write(to: inFile, atomically: true, encoding: .utf8)
        inputPath = inFile.path
    }
    defer {
        try? FileManager.default.removeItem(at: out)
        if inputPath != "/dev/null" { try? FileManager.default.removeItem(atPath: inputPath) }
    }
    let pid = try spawn(arguments, outputPath: out.path, inputPath: inputPath, environment: environment)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
    return (exitCode(status), output)
}

func exitCode(_ status: Int32) -> Int32 {
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// A long-running child process whose output goes to a file.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `exit` is guarded by a lock; everything else is immutable.
    public let pid: pid_t
    public let logURL: URL
    private let lock = NSLock()
    private var exit: Int32?

    public init(_ arguments: [String], log: URL, environment: [String: String]? = nil) throws {
        logURL = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        pid = try spawn(arguments, outputPath: log.path, environment: environment)
    }

    /// Whether the process has not exited yet (reaps it if it has).
    public var isRunning: Bool { lock.withLock { reap(block: false) } == nil }

    /// The exit status (128 + signal for a signal), once exited.
    public var terminationStatus: Int32? { lock.withLock { reap(block: false) } }

    private func reap(block: Bool) -> Int32? {
        if let exit { return exit }
        var status: Int32 = 0
        let r = waitpid(pid, &status, block ? 0 : WNOHANG)
        if r == pid {
            exit = exitCode(status)
        }
        return exit
    }

    public var output: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    public func signal(_ s: Int32) {
        if isRunning { kill(pid, s) }
    }

    /// Sends `first` (SIGTERM) and waits for the exit (SIGKILL after `timeout`). Returns the exit status.
    @discardableResult
    public func terminate(timeout: Duration = .seconds(15), signal first: Int32 = SIGTERM) async -> Int32 {
        signal(first)
        let deadline = ContinuousClock.now + timeout
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if isRunning {
            kill(pid, SIGKILL)
            return lock.withLock { reap(block: true) } ?? -1
        }
        return terminationStatus ?? -1
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = lock.withLock { reap(block: true) }
        }
    }
}
