import ArgumentParser
import Bridge
import BridgeConfig
import IdlewatcherCore
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The version printed by `--version` and announced to Home Assistant.
let bridgeVersion = "0.1.0"

@main
struct IdlewatcherBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idlewatcher-bridge",
        abstract: "Puts container lifecycles (Docker, Podman, Proxmox VE LXC) on an MQTT broker and takes commands from it.",
        version: bridgeVersion,
        subcommands: [Run.self, CheckConfig.self, Health.self],
        defaultSubcommand: Run.self)
}

enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
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

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the bridge (the default).")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    @Option(name: .long, help: "trace, debug, info, warning or error.")
    var logLevel: LogLevelOption = .info

    func run() async throws {
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
            throw ExitCode(1)
        }
        let app = try Application(configuration: configuration, version: bridgeVersion, logger: logger)
        logger.info("idlewatcher-bridge \(bridgeVersion) starting as bridge '\(configuration.bridgeID)'")
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: app.mqtt),
                    .init(service: app.bridge),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file: exit 0, or print each problem and exit 1.")

    @Option(name: .long, help: "The YAML configuration file.")
    var config: String

    func run() async throws {
        do {
            let c = try ConfigurationLoader().load(path: config)
            print("\(config): OK (bridge \(c.bridgeID), \(c.summary))")
        } catch {
            for p in error.problems { print(p.description) }
            throw ExitCode(1)
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Exit 0 if the running bridge is connected to its broker and every runtime, 1 if not (for health checks).")

    @Option(name: .long, help: "The YAML configuration file of the running bridge.")
    var config: String

    @Option(name: .long, help: "How old the health file may be, in seconds.")
    var maxAge: Int = 15

    func run() async throws {
        let healthFile: String
        do {
            healthFile = try ConfigurationLoader().healthFile(configPath: config)
        } catch {
            for p in error.problems { print(p.description) }
            throw ExitCode(2)
        }
        guard let f = fopen(healthFile, "r") else {
            print("unhealthy: no health file at \(healthFile) (is the bridge running?)")
            throw ExitCode(1)
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
            throw ExitCode(1)
        }
        let age = Timestamp.now().seconds - updated
        if age > Int64(maxAge) {
            print("unhealthy: the health file is \(age) s old (is the bridge running?)")
            throw ExitCode(1)
        }
        var problems: [String] = []
        if json["mqtt"]?.bool != true { problems.append("not connected to the MQTT broker") }
        for r in json["runtimes"]?.array ?? [] where r["available"]?.bool != true {
            problems.append("\(r["runtime"]?.string ?? "?") at \(r["endpoint"]?.string ?? "?") unreachable: \(r["error"]?.string ?? "not connected yet")")
        }
        if !problems.isEmpty {
            print("unhealthy: " + problems.joined(separator: "; "))
            throw ExitCode(1)
        }
        print("healthy")
    }
}
