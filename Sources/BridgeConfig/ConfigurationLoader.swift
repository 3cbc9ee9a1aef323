@_exported import ConfigReader
import IdlewatcherCore
import YAML

#if canImport(Glibc)
    import Glibc
#endif

/// The problems found in a configuration file, all of them.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every problem found; at least one.
    public var problems: [ConfigurationProblem]
    /// One line per problem, `path.to.key: what is wrong`, as `check-config` prints them.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads and validates the YAML configuration, collecting every problem with its key path.
public struct ConfigurationLoader {
    /// The environment (injected for tests).
    public var environment: [String: String]
    /// The host name, the default `bridge.id`.
    public var hostName: String

    /// A loader; by default with the process's environment and host name.
    public init(
        environment: [String: String] = ConfigurationLoader.processEnvironment(),
        hostName: String = ConfigurationLoader.currentHostName()
    ) {
        self.environment = environment
        self.hostName = hostName
    }

    /// Reads and validates the file at `path`. Throws every problem found, or that the file cannot be read.
    public func load(path: String) throws(ConfigurationError) -> Configuration {
        guard let text = readFile(path) else {
            throw ConfigurationError(problems: [
                ConfigurationProblem(
                    path: "", message: "cannot read the configuration file \(path): \(String(cString: strerror(errno)))")
            ])
        }
        return try parse(yaml: text)
    }

    /// Validates a configuration's YAML text, as ``load(path:)`` does a file's. Throws every problem found.
    public func parse(yaml text: String) throws(ConfigurationError) -> Configuration {
        var v = Validator(loader: self)
        let config = v.configuration(text)
        if !v.problems.isEmpty { throw ConfigurationError(problems: v.problems) }
        return config!
    }

    /// Where the health file goes unless `bridge.health_file` says: systemd's
    /// `RuntimeDirectory=` (`$RUNTIME_DIRECTORY`, or `/run/idlewatcher-bridge` when it exists,
    /// so that `health` run from a shell finds the service's file), else `/tmp`.
    func defaultHealthFile(bridgeID: String) -> String {
        var directory = "/tmp"
        if let d = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first {
            directory = String(d)
        } else {
            var st = stat()
            if stat("/run/idlewatcher-bridge", &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                directory = "/run/idlewatcher-bridge"
            }
        }
        return "\(directory)/idlewatcher-bridge-\(bridgeID).health"
    }

    /// Only the health file's path: what `idlewatcher-bridge health` needs. Reads `bridge.id` and
    /// `bridge.health_file` and nothing else, so it works where the service's secrets are not readable.
    public func healthFile(configPath path: String) throws(ConfigurationError) -> String {
        guard let text = readFile(path) else {
            throw ConfigurationError(problems: [
                ConfigurationProblem(
                    path: "", message: "cannot read the configuration file \(path): \(String(cString: strerror(errno)))")
            ])
        }
        let root: YAMLNode?
        do { root = try YAMLNode.parse(text) } catch {
            throw ConfigurationError(problems: [
                ConfigurationProblem(path: "", message: "not valid YAML: \(error)".oneLine(limit: 400))
            ])
        }
        let bridge = root?["bridge"]?.mapping
        let id = bridge?["id"]?.text ?? hostName
        if let h = bridge?["health_file"]?.text, h.hasPrefix("/") { return h }
        return defaultHealthFile(bridgeID: id)
    }

    /// The process's environment, read from `environ` at each call.
    public static func processEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }

    /// The host name up to its first `.`, each character `bridge.id` does not allow made `-`; `bridge` if empty.
    public static func currentHostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        let name =
            String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: ".")
            .first.map(String.init) ?? "bridge"
        let cleaned = String(name.unicodeScalars.map { BridgeIDRules.isAllowed($0) ? Character($0) : "-" })
        return cleaned.isEmpty ? "bridge" : cleaned
    }

    func readFile(_ path: String) -> String? { ConfigReader.readFile(path) }
}

enum BridgeIDRules {
    static func isAllowed(_ u: Unicode.Scalar) -> Bool {
        (u >= "A" && u <= "Z") || (u >= "a" && u <= "z") || (u >= "0" && u <= "9") || u == "_" || u == "-"
    }
}
