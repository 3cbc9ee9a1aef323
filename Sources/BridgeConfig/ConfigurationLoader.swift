import DockerProvider
import IdlewatcherCore
import ProxmoxProvider
import YAML

#if canImport(Glibc)
import Glibc
#endif

/// One thing wrong with a configuration file: `path.to.key: what is wrong`.
public struct ConfigurationProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// The problems found in a configuration file, all of them.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigurationProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads and validates the YAML configuration, collecting every problem with its key path.
public struct ConfigurationLoader {
    /// The environment (injected for tests).
    public var environment: [String: String]
    /// The host name, the default `bridge.id`.
    public var hostName: String

    public init(environment: [String: String] = ConfigurationLoader.processEnvironment(), hostName: String = ConfigurationLoader.currentHostName()) {
        self.environment = environment
        self.hostName = hostName
    }

    public func load(path: String) throws(ConfigurationError) -> Configuration {
        guard let text = readFile(path) else {
            throw ConfigurationError(problems: [ConfigurationProblem(path: "", message: "cannot read the configuration file \(path): \(String(cString: strerror(errno)))")])
        }
        return try parse(yaml: text)
    }

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
            if stat("/run/idlewatcher-bridge", &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { directory = "/run/idlewatcher-bridge" }
        }
        return "\(directory)/idlewatcher-bridge-\(bridgeID).health"
    }

    /// Only the health file's path: what `idlewatcher-bridge health` needs. Reads `bridge.id` and
    /// `bridge.health_file` and nothing else, so it works where the service's secrets are not readable.
    public func healthFile(configPath path: String) throws(ConfigurationError) -> String {
        guard let text = readFile(path) else {
            throw ConfigurationError(problems: [ConfigurationProblem(path: "", message: "cannot read the configuration file \(path): \(String(cString: strerror(errno)))")])
        }
        let root: YAMLNode?
        do { root = try YAMLNode.parse(text) } catch {
            throw ConfigurationError(problems: [ConfigurationProblem(path: "", message: "not valid YAML: \(error)".oneLine(limit: 400))])
        }
        let bridge = root?["bridge"]?.mapping
        let id = bridge?["id"]?.text ?? hostName
        if let h = bridge?["health_file"]?.text, h.hasPrefix("/") { return h }
        return defaultHealthFile(bridgeID: id)
    }

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

    public static func currentHostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        let name = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: ".").first.map(String.init) ?? "bridge"
        let cleaned = String(name.unicodeScalars.map { BridgeIDRules.isAllowed($0) ? Character($0) : "-" })
        return cleaned.isEmpty ? "bridge" : cleaned
    }

    func readFile(_ path: String) -> String? {
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

enum BridgeIDRules {
    static func isAllowed(_ u: Unicode.Scalar) -> Bool {
        (u >= "A" && u <= "Z") || (u >= "a" && u <= "z") || (u >= "0" && u <= "9") || u == "_" || u == "-"
    }
}

/// Walks the YAML node tree; every accessor records a problem with its path instead of failing.
private struct Validator {
    let loader: ConfigurationLoader
    var problems: [ConfigurationProblem] = []

    init(loader: ConfigurationLoader) { self.loader = loader }

    mutating func problem(_ path: String, _ message: String) {
        // One problem, one line: keys and values quoted in messages come from the file and may
        // hold line breaks, terminal escapes or megabytes (found by the config fuzz test).
        problems.append(ConfigurationProblem(path: path.oneLine(limit: 200), message: message.oneLine(limit: 400)))
    }

    mutating func configuration(_ text: String) -> Configuration? {
        let root: YAMLNode?
        do {
            root = try YAMLNode.parse(text)
        } catch {
            if error.kind == .complexKey, let mark = error.mark {
                // Valid YAML, but not a configuration: the parser refuses it without a key path.
                problem("", "the configuration's keys must be plain text, not a list or mapping (\(mark))")
            } else {
                // `line L, column C: problem (context at line L, column C)`: one line, no echo of the file.
                problem("", "not valid YAML: \(error)")
            }
            return nil
        }
        let top = mapping(root, "", allowed: ["bridge", "mqtt", "docker", "podman", "proxmox", "defaults", "homeassistant"])

        let bridge = mapping(top["bridge"], "bridge", allowed: ["id", "health_file"])
        var bridgeID = loader.hostName
        if let id = string(bridge["id"], "bridge.id") {
            if id.isEmpty || !id.unicodeScalars.allSatisfy(BridgeIDRules.isAllowed) {
                problem("bridge.id", "must match [A-Za-z0-9_-]+, got '\(id)'")
            } else {
                bridgeID = id
            }
        }

        let mqtt = mqttSection(top["mqtt"], bridgeID: bridgeID)
        // systemd's RuntimeDirectory= sets RUNTIME_DIRECTORY; elsewhere /tmp is writable.
        var healthFile = loader.defaultHealthFile(bridgeID: bridgeID)
        if let h = string(bridge["health_file"], "bridge.health_file") {
            if h.hasPrefix("/") { healthFile = h } else { problem("bridge.health_file", "must be an absolute path, got '\(h)'") }
        }
        var config = Configuration(bridgeID: bridgeID, healthFile: healthFile, mqtt: mqtt)
        config.docker = list(top["docker"], "docker").enumerated().map { dockerSection($1, "docker[\($0)]") }
        config.podman = list(top["podman"], "podman").enumerated().map {
            dockerSection($1, "podman[\($0)]", defaultURL: "unix:///run/podman/podman.sock")
        }
        config.proxmox = list(top["proxmox"], "proxmox").enumerated().compactMap { proxmoxSection($1, "proxmox[\($0)]") }
        config.defaults = defaultsSection(top["defaults"])
        config.homeAssistant = homeAssistantSection(top["homeassistant"])
        if config.docker.isEmpty && config.podman.isEmpty && config.proxmox.isEmpty && top["docker"] == nil
            && top["podman"] == nil && top["proxmox"] == nil
        {
            problem("docker", "no runtime configured: add a docker, podman or proxmox entry")
        }
        checkNamespaces(config)
        return config
    }

    mutating func checkNamespaces(_ c: Configuration) {
        var seen: [String: String] = [:]
        for (i, d) in c.docker.enumerated() {
            let key = "docker|" + d.idPrefix
            if let other = seen[key] { problem("docker[\(i)].id_prefix", "'\(d.idPrefix)' is also the id_prefix of \(other); give each endpoint its own") }
            seen[key] = "docker[\(i)]"
        }
        for (i, d) in c.podman.enumerated() {
            let key = "podman|" + d.idPrefix
            if let other = seen[key] { problem("podman[\(i)].id_prefix", "'\(d.idPrefix)' is also the id_prefix of \(other); give each endpoint its own") }
            seen[key] = "podman[\(i)]"
        }
        for (i, p) in c.proxmox.enumerated() {
            let key = "proxmox|" + p.idPrefix
            if let other = seen[key] { problem("proxmox[\(i)].id_prefix", "'\(p.idPrefix)' is also the id_prefix of \(other); give each cluster its own") }
            seen[key] = "proxmox[\(i)]"
        }
    }

    // MARK: sections

    mutating func mqttSection(_ node: YAMLNode?, bridgeID: String) -> Configuration.MQTT {
        let m = mapping(
            node, "mqtt",
            allowed: ["url", "base_topic", "client_id", "protocol", "username", "password", "password_file", "ca_file", "cert_file", "key_file", "queue_limit", "keepalive"])
        var out = Configuration.MQTT(clientID: "idlewatcher-bridge-\(bridgeID)")
        if let url = string(m["url"], "mqtt.url") {
            out.url = url
            var rest = Substring(url)
            if rest.hasPrefix("mqtt://") {
                rest = rest.dropFirst(7)
            } else if rest.hasPrefix("mqtts://") {
                rest = rest.dropFirst(8)
                out.tls = true
                out.port = 8883
            } else {
                problem("mqtt.url", "must start with mqtt:// or mqtts://, got '\(url)'")
            }
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
                out.host = String(rest[..<colon])
                if let port = Int32(rest[rest.index(after: colon)...]), (1...65535).contains(port) {
                    out.port = port
                } else {
                    problem("mqtt.url", "the port must be a number from 1 to 65535, got '\(rest[rest.index(after: colon)...])'")
                }
            } else {
                out.host = String(rest)
            }
            if out.host.isEmpty || out.host.contains("/") { problem("mqtt.url", "expected mqtt://HOST:PORT, got '\(url)'") }
        }
        if let base = string(m["base_topic"], "mqtt.base_topic") {
            if base.isEmpty || base.contains("+") || base.contains("#") || base.hasPrefix("/") || base.hasSuffix("/") || base.contains("//") {
                problem("mqtt.base_topic", "must be a topic without wildcards and without leading or trailing '/', got '\(base)'")
            } else {
                out.baseTopic = base
            }
        }
        if let id = string(m["client_id"], "mqtt.client_id") {
            if id.isEmpty || id.utf8.count > 128 { problem("mqtt.client_id", "must be 1 to 128 bytes") } else { out.clientID = id }
        }
        if let p = m["protocol"] {
            let text = p.text ?? ""
            switch text {
            case "5", "5.0": out.protocolVersion = "5"
            case "3.1.1", "311", "4": out.protocolVersion = "3.1.1"
            default: problem("mqtt.protocol", "must be 5 or 3.1.1, got '\(text)'")
            }
        }
        out.username = string(m["username"], "mqtt.username")
        if m["password"] != nil {
            problem("mqtt.password", "secrets are not read from the configuration file; use mqtt.password_file or the environment variable IDLEWATCHER_MQTT_PASSWORD")
        }
        out.password = secret(file: m["password_file"], "mqtt.password_file", env: "IDLEWATCHER_MQTT_PASSWORD")
        if out.password != nil && out.username == nil {
            problem("mqtt.username", "a password is set (password_file or IDLEWATCHER_MQTT_PASSWORD) but no username")
        }
        out.caFile = readableFile(m["ca_file"], "mqtt.ca_file")
        out.certFile = readableFile(m["cert_file"], "mqtt.cert_file")
        out.keyFile = readableFile(m["key_file"], "mqtt.key_file")
        if (out.certFile == nil) != (out.keyFile == nil) {
            problem(out.certFile == nil ? "mqtt.cert_file" : "mqtt.key_file", "cert_file and key_file go together")
        }
        if (out.caFile != nil || out.certFile != nil) && !out.tls {
            problem("mqtt.url", "TLS files are set but the URL is not mqtts://")
        }
        if let q = int(m["queue_limit"], "mqtt.queue_limit", range: 1...10_000_000) { out.queueLimit = q }
        if let k = duration(m["keepalive"], "mqtt.keepalive") {
            if k < .seconds(5) || k > .seconds(65535) { problem("mqtt.keepalive", "must be from 5s to 18h") } else { out.keepAlive = k }
        }
        return out
    }

    mutating func dockerSection(_ node: YAMLNode, _ path: String, defaultURL: String = "unix:///var/run/docker.sock") -> Configuration.Docker {
        let m = mapping(node, path, allowed: ["url", "id_prefix", "include", "exclude", "protected", "ca_file", "cert_file", "key_file"])
        var out = Configuration.Docker(url: defaultURL)
        if let url = string(m["url"], "\(path).url") { out.url = url }
        out.idPrefix = idPrefix(m["id_prefix"], "\(path).id_prefix")
        out.include = stringList(m["include"], "\(path).include")
        out.exclude = stringList(m["exclude"], "\(path).exclude")
        out.protected = stringList(m["protected"], "\(path).protected")
        out.caFile = readableFile(m["ca_file"], "\(path).ca_file")
        out.certFile = readableFile(m["cert_file"], "\(path).cert_file")
        out.keyFile = readableFile(m["key_file"], "\(path).key_file")
        if (out.certFile == nil) != (out.keyFile == nil) {
            problem(out.certFile == nil ? "\(path).cert_file" : "\(path).key_file", "cert_file and key_file go together")
        }
        let endpoint = DockerEndpointConfiguration(url: out.url, caFile: out.caFile, certFile: out.certFile, keyFile: out.keyFile)
        if case .failure(let e) = endpoint.httpConfiguration() { problem("\(path).url", "\(e.message), got '\(out.url)'") }
        return out
    }

    mutating func proxmoxSection(_ node: YAMLNode, _ path: String) -> ProxmoxEndpointConfiguration? {
        let m = mapping(
            node, path,
            allowed: ["url", "token_id", "token_secret", "token_secret_file", "username", "password", "password_file", "realm", "ca_file", "insecure_skip_verify", "nodes", "vmids", "poll_interval", "id_prefix", "request_timeout", "task_timeout"])
        let url = string(m["url"], "\(path).url")
        if m["url"] == nil { problem("\(path).url", "is required, for example https://pve1.lan:8006") }
        if let url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            problem("\(path).url", "must start with https:// (or http:// for a simulator), got '\(url)'")
        }
        for key in ["token_secret", "password"] where m[key] != nil {
            problem("\(path).\(key)", "secrets are not read from the configuration file; use \(key)_file or the environment")
        }
        var credentials: ProxmoxEndpointConfiguration.Credentials? = nil
        let tokenID = string(m["token_id"], "\(path).token_id")
        let username = string(m["username"], "\(path).username")
        if let tokenID {
            if username != nil { problem("\(path).username", "use either token_id or username, not both") }
            let parts = tokenID.split(separator: "!", omittingEmptySubsequences: false)
            if parts.count != 2 || !parts[0].contains("@") || parts[1].isEmpty {
                problem("\(path).token_id", "must look like user@realm!tokenname, got '\(tokenID)'")
            }
            if let s = secret(file: m["token_secret_file"], "\(path).token_secret_file", env: "IDLEWATCHER_PROXMOX_TOKEN_SECRET") {
                credentials = .token(id: tokenID, secret: s)
            } else if m["token_secret_file"] == nil {
                problem("\(path).token_secret_file", "the token secret is missing: set token_secret_file or IDLEWATCHER_PROXMOX_TOKEN_SECRET")
            }
        } else if let username {
            if !username.contains("@") && m["realm"] == nil {
                problem("\(path).username", "must be user@realm (or set realm), got '\(username)'")
            }
            if let pw = secret(file: m["password_file"], "\(path).password_file", env: "IDLEWATCHER_PROXMOX_PASSWORD") {
                credentials = .password(username: username, password: pw, realm: string(m["realm"], "\(path).realm"))
            } else if m["password_file"] == nil {
                problem("\(path).password_file", "the password is missing: set password_file or IDLEWATCHER_PROXMOX_PASSWORD")
            }
        } else {
            problem("\(path).token_id", "set token_id (with token_secret_file) or username (with password_file)")
        }
        let caFile = readableFile(m["ca_file"], "\(path).ca_file")
        let insecure = bool(m["insecure_skip_verify"], "\(path).insecure_skip_verify") ?? false
        let nodes = stringList(m["nodes"], "\(path).nodes")
        var vmids: [Int] = []
        if let list = m["vmids"] {
            if let seq = list.sequence {
                for (i, n) in seq.enumerated() {
                    if let v = n.text.flatMap({ Int($0) }), v >= 100, v <= 999_999_999 { vmids.append(v) } else {
                        problem("\(path).vmids[\(i)]", "must be a vmid (a whole number from 100)")
                    }
                }
            } else {
                problem("\(path).vmids", "must be a list of vmids, like [100, 105]")
            }
        }
        var poll: Duration = .seconds(2)
        if let d = duration(m["poll_interval"], "\(path).poll_interval") {
            if d < .milliseconds(200) { problem("\(path).poll_interval", "must be at least 200ms") } else { poll = d }
        }
        var requestTimeout: Duration = .seconds(15)
        if let d = duration(m["request_timeout"], "\(path).request_timeout") { requestTimeout = d }
        var taskTimeout: Duration? = nil
        if let d = duration(m["task_timeout"], "\(path).task_timeout") {
            if d < .seconds(1) { problem("\(path).task_timeout", "must be at least 1s") } else { taskTimeout = d }
        }
        let prefix = idPrefix(m["id_prefix"], "\(path).id_prefix")
        guard let url, let credentials else { return nil }
        var endpoint = ProxmoxEndpointConfiguration(
            url: url, credentials: credentials, caFile: caFile, insecureSkipVerify: insecure, nodes: nodes, vmids: vmids,
            pollInterval: poll, idPrefix: prefix, requestTimeout: requestTimeout)
        if let taskTimeout { endpoint.taskTimeout = taskTimeout }
        return endpoint
    }

    mutating func defaultsSection(_ node: YAMLNode?) -> Configuration.Defaults {
        let m = mapping(node, "defaults", allowed: ["stop_timeout", "allow", "operation_timeout", "command_queue_limit"])
        var out = Configuration.Defaults()
        if let d = duration(m["stop_timeout"], "defaults.stop_timeout") {
            if d > .seconds(3600) { problem("defaults.stop_timeout", "must be at most 1h") } else { out.stopTimeout = d }
        }
        if let d = duration(m["operation_timeout"], "defaults.operation_timeout") {
            if d < .seconds(1) { problem("defaults.operation_timeout", "must be at least 1s") } else { out.operationTimeout = d }
        }
        if m["allow"] != nil {
            var actions: [Action] = []
            for (i, name) in stringList(m["allow"], "defaults.allow").enumerated() {
                if let a = Action(rawValue: name.lowercased()) { actions.append(a) } else {
                    problem("defaults.allow[\(i)]", "unknown action '\(name)'; expected one of \(Action.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            out.allow = actions
        }
        if let q = int(m["command_queue_limit"], "defaults.command_queue_limit", range: 1...10_000) { out.commandQueueLimit = q }
        return out
    }

    mutating func homeAssistantSection(_ node: YAMLNode?) -> Configuration.HomeAssistant {
        let m = mapping(node, "homeassistant", allowed: ["enabled", "prefix", "remove_after"])
        var out = Configuration.HomeAssistant()
        if let e = bool(m["enabled"], "homeassistant.enabled") { out.enabled = e }
        if let p = string(m["prefix"], "homeassistant.prefix") {
            if p.isEmpty || p.contains("+") || p.contains("#") { problem("homeassistant.prefix", "must be a topic without wildcards") } else { out.prefix = p }
        }
        if let d = duration(m["remove_after"], "homeassistant.remove_after") { out.removeAfter = d }
        return out
    }

    // MARK: typed accessors

    struct Mapping {
        var values: [String: YAMLNode] = [:]
        subscript(_ key: String) -> YAMLNode? { values[key] }
    }

    mutating func mapping(_ node: YAMLNode?, _ path: String, allowed: Set<String>) -> Mapping {
        guard let node else { return Mapping() }
        if let s = node.text, s.isEmpty || s == "~" || s == "null" { return Mapping() }
        guard let map = node.mapping else {
            problem(path, path.isEmpty ? "the configuration must be a mapping of keys to values (bridge:, mqtt:, docker:, …)" : "must be a mapping of keys to values")
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

    mutating func list(_ node: YAMLNode?, _ path: String) -> [YAMLNode] {
        guard let node else { return [] }
        if let s = node.text, s.isEmpty || s == "~" || s == "null" { return [] }
        guard let seq = node.sequence else {
            problem(path, "must be a list (one entry per endpoint, each starting with '- ')")
            return []
        }
        return seq
    }

    mutating func string(_ node: YAMLNode?, _ path: String) -> String? {
        guard let node else { return nil }
        guard let s = node.scalar else {
            problem(path, "must be text, not a list or mapping")
            return nil
        }
        return s.text
    }

    mutating func stringList(_ node: YAMLNode?, _ path: String) -> [String] {
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

    mutating func bool(_ node: YAMLNode?, _ path: String) -> Bool? {
        guard let node else { return nil }
        switch node.text?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            problem(path, "must be true or false")
            return nil
        }
    }

    mutating func int(_ node: YAMLNode?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard let v = node.text.flatMap({ Int($0) }), range.contains(v) else {
            problem(path, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return v
    }

    mutating func duration(_ node: YAMLNode?, _ path: String) -> Duration? {
        guard let node else { return nil }
        guard let text = node.text, let d = Duration(parsing: text) else {
            problem(path, "must be a duration like 500ms, 10s, 2m or 1h, got '\(node.text ?? "a list or mapping")'")
            return nil
        }
        return d
    }

    mutating func idPrefix(_ node: YAMLNode?, _ path: String) -> String {
        guard let p = string(node, path) else { return "" }
        if p.contains("/") || p.contains("+") || p.contains("#") || p.contains(where: { $0.isWhitespace }) {
            problem(path, "must not contain '/', '+', '#' or spaces, got '\(p)'")
            return ""
        }
        return p
    }

    mutating func readableFile(_ node: YAMLNode?, _ path: String) -> String? {
        guard let file = string(node, path) else { return nil }
        if access(file, R_OK) != 0 {
            problem(path, "cannot read \(file): \(String(cString: strerror(errno)))")
            return nil
        }
        return file
    }

    /// A secret from a file (first line, trimmed) or, if no file is named, the environment.
    mutating func secret(file node: YAMLNode?, _ path: String, env: String) -> String? {
        if let file = string(node, path) {
            guard let text = loader.readFile(file) else {
                problem(path, "cannot read \(file): \(String(cString: strerror(errno)))")
                return nil
            }
            let value = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "").trimmingWhitespace()
            if value.isEmpty { problem(path, "\(file) is empty") }
            return value
        }
        if let v = loader.environment[env], !v.isEmpty { return v }
        return nil
    }
}
