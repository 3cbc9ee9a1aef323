import Bridge
import BridgeConfig
import IdlePolicy
import IdlewatcherCore
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The version printed by `--version` and announced to Home Assistant.
let bridgeVersion = "0.1.0"

@main
enum IdlewatcherBridge {
    static func main() async {
        let request: CommandLineRequest
        do {
            request = try CommandLineRequest.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            let text = Array("Error: \(error.message)\n\n\(CommandLineRequest.usage)\n".utf8)
            _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            exit(64)
        }
        let status: Int32
        switch request {
        case .version:
            print(bridgeVersion)
            status = 0
        case .help:
            print(CommandLineRequest.usage)
            status = 0
        case .run(let config, let level):
            status = await Run(config: config, logLevel: level).run()
        case .checkConfig(let config, let runtimes):
            status = await CheckConfig(config: config, runtimes: runtimes).run()
        case .health(let config, let maxAge):
            status = Health(config: config, maxAge: maxAge).run()
        }
        exit(status)
    }
}

enum LogLevelOption: String, CaseIterable {
    case trace, debug, info, warning, error
    var level: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }
}

/// `run`: the bridge, until SIGTERM or SIGINT.
struct Run {
    var config: String
    var logLevel: LogLevelOption = .info

    func run() async -> Int32 {
        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return OneLineLogHandler(h)
        }
        let logger = Logger(label: "idlewatcher-bridge")
        let configuration: Configuration
        do {
            configuration = try ConfigurationLoader().load(path: config)
        } catch {
            for p in error.problems { logger.error("\(p.description)") }
            return 1
        }
        let app: Application
        do {
            app = try Application(configuration: configuration, version: bridgeVersion, logger: logger)
        } catch {
            logger.error("cannot start: \(BridgeError.wrapping(error).message)")
            return 1
        }
        logger.info("idlewatcher-bridge \(bridgeVersion) starting as bridge '\(configuration.bridgeID)'")
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: app.mqtt),
                    .init(service: app.bridge),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("stopped on an error: \(error)")
            return 1
        }
        logger.info("stopped")
        return 0
    }
}

/// `check-config`: exit 0, or print each problem and exit 1. With `--runtimes`, also the
/// problems of the containers' labels, read from the runtimes (warnings: the exit status stays 0).
struct CheckConfig {
    var config: String
    var runtimes = false

    func run() async -> Int32 {
        do {
            let c = try ConfigurationLoader().load(path: config)
            print("\(config): OK (bridge \(c.bridgeID), \(c.summary))")
            if runtimes { await checkLabels(c) }
            return 0
        } catch {
            for p in error.problems { print(p.description) }
            return 1
        }
    }
}

extension CheckConfig {
    /// Lists each endpoint's containers (10 s at most each) and prints a warning per label problem.
    func checkLabels(_ c: Configuration) async {
        let logger = Logger(label: "check-config") { _ in SwiftLogNoOpLogHandler() }
        for e in c.endpoints {
            let where_ = "\(e.kind) at \(e.url)"
            do {
                let runtime = try e.make(logger)
                let list = try await withThrowingTaskGroup(of: [ContainerInfo]?.self) { group in
                    group.addTask { try await runtime.containers() }
                    group.addTask {
                        try await Task.sleep(for: .seconds(10))
                        return nil
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? nil
                }
                await runtime.close()
                guard let list else {
                    print("warning: \(where_) did not list its containers within 10 s")
                    continue
                }
                // Only the containers the bridge would expose (include, exclude, idlewatcher.enable).
                let policy = ExposurePolicy(include: Set(e.include), exclude: Set(e.exclude))
                let exposed = list.filter { policy.isVisible(name: $0.name, labels: $0.labels) }
                var count = 0
                for info in exposed.sorted(by: { $0.id < $1.id }) {
                    for p in ExposurePolicy.labelProblems(info.labels) + IdleConfiguration.labelProblems(info.labels) {
                        print("warning: \(e.kind)/\(info.id): \(p)")
                        count += 1
                    }
                }
                print("\(where_): \(exposed.count) container(s) exposed, \(count) label problem(s)")
            } catch {
                print("warning: cannot check the labels on \(where_): \(BridgeError.wrapping(error).message)")
            }
        }
    }
}

/// `health`: exit 0 if the running bridge is connected to its broker and every runtime, 1 if not.
struct Health {
    var config: String
    var maxAge: Int = 15

    func run() -> Int32 {
        let healthFile: String
        do {
            healthFile = try ConfigurationLoader().healthFile(configPath: config)
        } catch {
            for p in error.problems { print(p.description) }
            return 2
        }
        guard let f = fopen(healthFile, "r") else {
            print("unhealthy: no health file at \(healthFile) (is the bridge running?)")
            return 1
        }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            bytes.append(contentsOf: buf[0..<n])
            if n < buf.count { break }
        }
        fclose(f)
        guard let json = try? JSON.parse(bytes), let updated = json["updated"]?.int64 else {
            print("unhealthy: unreadable health file \(healthFile)")
            return 1
        }
        let age = Timestamp.now().seconds - updated
        if age > Int64(maxAge) {
            print("unhealthy: the health file is \(age) s old (is the bridge running?)")
            return 1
        }
        var problems: [String] = []
        if json["mqtt"]?.bool != true { problems.append("not connected to the MQTT broker") }
        for r in json["runtimes"]?.array ?? [] where r["available"]?.bool != true {
            problems.append(
                "\(r["runtime"]?.string ?? "?") at \(r["endpoint"]?.string ?? "?") unreachable: \(r["error"]?.string ?? "not connected yet")"
            )
        }
        if !problems.isEmpty {
            print("unhealthy: " + problems.joined(separator: "; "))
            return 1
        }
        print("healthy")
        return 0
    }
}
