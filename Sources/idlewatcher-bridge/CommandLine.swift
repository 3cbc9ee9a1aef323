#if canImport(Glibc)
    import Glibc
#endif

/// The command line, parsed by hand: four subcommands and five options do not earn a package
/// (and swift-argument-parser links FoundationEssentials, 2 MiB of every bridge's memory).
enum CommandLineRequest: Equatable {
    case run(config: String, logLevel: LogLevelOption)
    case checkConfig(config: String, runtimes: Bool)
    case health(config: String, maxAge: Int)
    case version
    case help

    static let usage = """
        OVERVIEW: Puts container lifecycles (Docker, Podman, Proxmox VE) on an MQTT broker, takes \
        commands from it, and puts idle containers to sleep.

        USAGE: idlewatcher-bridge [run] --config PATH [--log-level trace|debug|info|warning|error]
               idlewatcher-bridge check-config --config PATH [--runtimes]
               idlewatcher-bridge health --config PATH [--max-age SECONDS]
               idlewatcher-bridge --version

        SUBCOMMANDS:
          run (default)    Run the bridge.
          check-config     Validate a configuration file: exit 0, or print each problem and exit 1.
          health           Exit 0 if the running bridge is connected to its broker and every runtime, 1 if not.

        OPTIONS:
          --config PATH    The YAML configuration file.
          --log-level L    trace, debug, info (default), warning or error (run only).
          --runtimes       check-config only: also list every runtime's containers and check their
                           idlewatcher.* labels (warnings; the exit status stays that of the file).
          --max-age S      How old the health file may be, in seconds (health only; default 15).
          --version        Print the version.
          -h, --help       Print this help.
        """

    /// Parses the arguments after the program name; a usage error is thrown as its message.
    static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineRequest {
        var args = arguments[...]
        var subcommand = "run"
        if let first = args.first, !first.hasPrefix("-") {
            guard ["run", "check-config", "health"].contains(first) else {
                throw UsageError("unknown subcommand '\(first)'; expected run, check-config or health")
            }
            subcommand = first
            args = args.dropFirst()
        }
        var options: [String: String] = [:]
        let allowed: Set<String> =
            switch subcommand {
            case "run": ["config", "log-level"]
            case "health": ["config", "max-age"]
            default: ["config"]
            }
        var runtimes = false
        while let arg = args.popFirst() {
            switch arg {
            case "--version": return .version
            case "-h", "--help": return .help
            case "--runtimes" where subcommand == "check-config":
                runtimes = true
                continue
            default: break
            }
            guard arg.hasPrefix("--") else { throw UsageError("unexpected argument '\(arg)'") }
            var name = String(arg.dropFirst(2))
            var value: String? = nil
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard allowed.contains(name) else {
                throw UsageError(
                    "unknown option '--\(name)' for \(subcommand); it takes \(allowed.sorted().map { "--\($0)" }.joined(separator: ", "))"
                )
            }
            if value == nil { value = args.popFirst() }
            guard let value, !value.isEmpty else { throw UsageError("--\(name) needs a value") }
            guard options.updateValue(value, forKey: name) == nil else { throw UsageError("--\(name) is given twice") }
        }
        guard let config = options["config"] else { throw UsageError("missing --config PATH") }
        switch subcommand {
        case "check-config":
            return .checkConfig(config: config, runtimes: runtimes)
        case "health":
            var maxAge = 15
            if let text = options["max-age"] {
                guard let n = Int(text), n > 0 else {
                    throw UsageError("--max-age must be a whole number of seconds, got '\(text)'")
                }
                maxAge = n
            }
            return .health(config: config, maxAge: maxAge)
        default:
            var level = LogLevelOption.info
            if let text = options["log-level"] {
                guard let l = LogLevelOption(rawValue: text) else {
                    throw UsageError("--log-level must be trace, debug, info, warning or error, got '\(text)'")
                }
                level = l
            }
            return .run(config: config, logLevel: level)
        }
    }
}

/// A command line that cannot be run: the message, then the usage, and exit 64 (EX_USAGE).
struct UsageError: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}
