import IdlewatcherCore
import YAML

#if canImport(Glibc)
    import Glibc
#endif

/// One thing wrong with a configuration file: `path.to.key: what is wrong`.
public struct ConfigurationProblem: Sendable, Hashable, CustomStringConvertible {
    /// The key path: `mqtt.url`, `docker[0].include[2]`; "" for the file as a whole.
    public var path: String
    /// What is wrong, and what is expected; one line.
    public var message: String
    /// `path: message`, or the message alone.
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    /// A problem at `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}

/// Walks a YAML node tree for one configuration file: every accessor records a problem with
/// its key path instead of failing, so that `check-config` prints them all at once. Shared by
/// the bridge's own sections and each runtime module's section.
public struct ConfigReader {
    /// The environment (secrets may come from it).
    public let environment: [String: String]
    /// Every problem recorded so far, in order.
    public private(set) var problems: [ConfigurationProblem] = []

    /// A reader without problems; `environment` is where secrets may come from.
    public init(environment: [String: String]) { self.environment = environment }

    /// Records a problem. `path` and `message` may quote the file: they are made one line each and cut
    /// at 200 and 400 characters.
    public mutating func problem(_ path: String, _ message: String) {
        // One problem, one line: keys and values quoted in messages come from the file and may
        // hold line breaks, terminal escapes or megabytes (found by the config fuzz test).
        problems.append(ConfigurationProblem(path: path.oneLine(limit: 200), message: message.oneLine(limit: 400)))
    }

    // MARK: typed accessors

    /// A mapping whose keys were checked against the allowed ones.
    public struct Mapping {
        /// The allowed keys that are present, with their values.
        public var values: [String: YAMLNode] = [:]
        /// The value of `key`; nil if absent (or not allowed).
        public subscript(_ key: String) -> YAMLNode? { values[key] }
    }

    /// The mapping at `path`, with only the `allowed` keys (each other key is a problem). Absent, empty
    /// or `null`: an empty mapping, no problem.
    public mutating func mapping(_ node: YAMLNode?, _ path: String, allowed: Set<String>) -> Mapping {
        guard let node else { return Mapping() }
        if let s = node.text, s.isEmpty || s == "~" || s == "null" { return Mapping() }
        guard let map = node.mapping else {
            problem(
                path,
                path.isEmpty
                    ? "the configuration must be a mapping of keys to values (bridge:, mqtt:, docker:, …)"
                    : "must be a mapping of keys to values")
            return Mapping()
        }
        var out = Mapping()
        // Keys are scalars (the YAML module refuses any other key, and a duplicate one).
        for entry in map {
            let key = entry.key.text, v = entry.value
            let full = path.isEmpty ? key : "\(path).\(key)"
            if !allowed.contains(key) {
                problem(full, "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
                continue
            }
            out.values[key] = v
        }
        return out
    }

    /// The list at `path`; absent, empty or `null`: empty, no problem; anything else is a problem.
    public mutating func list(_ node: YAMLNode?, _ path: String) -> [YAMLNode] {
        guard let node else { return [] }
        if let s = node.text, s.isEmpty || s == "~" || s == "null" { return [] }
        guard let seq = node.sequence else {
            problem(path, "must be a list (one entry per endpoint, each starting with '- ')")
            return []
        }
        return seq
    }

    /// The scalar's text; nil if absent, or (with a problem) a list or mapping.
    public mutating func string(_ node: YAMLNode?, _ path: String) -> String? {
        guard let node else { return nil }
        guard let s = node.scalar else {
            problem(path, "must be text, not a list or mapping")
            return nil
        }
        return s.text
    }

    /// The texts of a list; an empty or non-text item, or a value that is not a list, is a problem and left out.
    public mutating func stringList(_ node: YAMLNode?, _ path: String) -> [String] {
        guard let node else { return [] }
        guard let seq = node.sequence else {
            problem(path, "must be a list, like [a, b]")
            return []
        }
        var out: [String] = []
        for (i, n) in seq.enumerated() {
            if let s = n.text, !s.isEmpty { out.append(s) } else { problem("\(path)[\(i)]", "must be non-empty text") }
        }
        return out
    }

    /// `true`/`yes`/`on` or `false`/`no`/`off`, any case; nil if absent, or (with a problem) anything else.
    public mutating func bool(_ node: YAMLNode?, _ path: String) -> Bool? {
        guard let node else { return nil }
        switch node.text?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(path, "must be true or false")
            return nil
        }
    }

    /// A whole number within `range`; nil if absent, or (with a problem) anything else.
    public mutating func int(_ node: YAMLNode?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard let v = node.text.flatMap({ Int($0) }), range.contains(v) else {
            problem(path, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return v
    }

    /// A duration like `500ms`, `10s`, `2m` or `1h`; nil if absent, or (with a problem) anything else.
    public mutating func duration(_ node: YAMLNode?, _ path: String) -> Duration? {
        guard let node else { return nil }
        guard let text = node.text, let d = Duration(parsing: text) else {
            problem(path, "must be a duration like 500ms, 10s, 2m or 1h, got '\(node.text ?? "a list or mapping")'")
            return nil
        }
        return d
    }

    /// An `id_prefix`: no `/`, `+`, `#` or whitespace; "" if absent, or (with a problem) invalid.
    public mutating func idPrefix(_ node: YAMLNode?, _ path: String) -> String {
        guard let p = string(node, path) else { return "" }
        if p.contains("/") || p.contains("+") || p.contains("#") || p.contains(where: { $0.isWhitespace }) {
            problem(path, "must not contain '/', '+', '#' or spaces, got '\(p)'")
            return ""
        }
        return p
    }

    /// A file this process can read now; nil if absent, or (with a problem) unreadable.
    public mutating func readableFile(_ node: YAMLNode?, _ path: String) -> String? {
        guard let file = string(node, path) else { return nil }
        if access(file, R_OK) != 0 {
            problem(path, "cannot read \(file): \(String(cString: strerror(errno)))")
            return nil
        }
        return file
    }

    /// A secret from a file (first line, trimmed) or, if no file is named, the environment.
    public mutating func secret(file node: YAMLNode?, _ path: String, env: String) -> String? {
        if let file = string(node, path) {
            guard let text = Self.readFile(file) else {
                problem(path, "cannot read \(file): \(String(cString: strerror(errno)))")
                return nil
            }
            let value = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "").trimmingWhitespace()
            if value.isEmpty { problem(path, "\(file) is empty") }
            return value
        }
        if let v = environment[env], !v.isEmpty { return v }
        return nil
    }

    /// A file's text (at most 16 MiB), or nil with `errno` set.
    public static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n > 0 { bytes.append(contentsOf: buf[0..<n]) }
            if n < buf.count { break }
            if bytes.count > 16 << 20 { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
