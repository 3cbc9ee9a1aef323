import IdlewatcherTesting
import Testing

@testable import idlewatcher_bridge

/// The command line as CONTRACT.md gives it, parsed without swift-argument-parser.
@Suite("The command line")
struct CommandLineTests {
    @Test("the contract's forms")
    func forms() throws {
        #expect(try CommandLineRequest.parse(["--config", "c.yaml"]) == .run(config: "c.yaml", logLevel: .info))
        #expect(
            try CommandLineRequest.parse(["run", "--config=c.yaml", "--log-level", "debug"])
                == .run(config: "c.yaml", logLevel: .debug))
        #expect(
            try CommandLineRequest.parse(["check-config", "--config", "c.yaml"])
                == .checkConfig(config: "c.yaml", runtimes: false))
        #expect(
            try CommandLineRequest.parse(["check-config", "--runtimes", "--config", "c.yaml"])
                == .checkConfig(config: "c.yaml", runtimes: true))
        #expect(
            try CommandLineRequest.parse(["health", "--config", "c.yaml", "--max-age", "30"])
                == .health(config: "c.yaml", maxAge: 30))
        #expect(try CommandLineRequest.parse(["health", "--config", "c.yaml"]) == .health(config: "c.yaml", maxAge: 15))
        #expect(try CommandLineRequest.parse(["--version"]) == .version)
        #expect(try CommandLineRequest.parse(["check-config", "--help"]) == .help)
    }

    @Test(
        "usage errors say what is wrong",
        arguments: [
            ([String](), "missing --config PATH"),
            (["--config"], "--config needs a value"),
            (["--config", "a", "--config", "b"], "--config is given twice"),
            (["--log-level", "loud", "--config", "c"], "--log-level must be trace, debug, info, warning or error, got 'loud'"),
            (
                ["check-config", "--config", "c", "--log-level", "debug"],
                "unknown option '--log-level' for check-config; it takes --config"
            ),
            (["health", "--config", "c", "--max-age", "-1"], "--max-age must be a whole number of seconds, got '-1'"),
            (["start", "--config", "c"], "unknown subcommand 'start'; expected run, check-config or health"),
            (["--config", "c", "extra"], "unexpected argument 'extra'"),
            (["--runtimes", "--config", "c"], "unknown option '--runtimes' for run; it takes --config, --log-level"),
        ])
    func usageErrors(_ args: [String], _ message: String) {
        #expect(throws: UsageError(message)) { try CommandLineRequest.parse(args) }
    }

    @Test("a usage error exits 64 with the message and the usage on stderr; --version prints the version")
    func process() throws {
        let (status, output) = try run([BridgeProcess.executable, "check-config"])
        #expect(status == 64)
        #expect(output.contains("Error: missing --config PATH") && output.contains("USAGE: idlewatcher-bridge"))
        let v = try run([BridgeProcess.executable, "--version"])
        #expect(v.status == 0 && v.output.trimmingCharacters(in: .whitespacesAndNewlines) == bridgeVersion)
    }
}
