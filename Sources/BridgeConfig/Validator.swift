import IdlePolicy
import IdlewatcherCore
import YAML

/// Walks the YAML node tree; every accessor records a problem with its path instead of failing.
struct Validator {
    let loader: ConfigurationLoader
    var r: ConfigReader
    var problems: [ConfigurationProblem] { r.problems }

    init(loader: ConfigurationLoader) {
        self.loader = loader
        self.r = ConfigReader(environment: loader.environment)
    }

    mutating func configuration(_ text: String) -> Configuration? {
        let root: YAMLNode?
        do {
            root = try YAMLNode.parse(text)
        } catch {
            if error.kind == .complexKey, let mark = error.mark {
                // Valid YAML, but not a configuration: the parser refuses it without a key path.
                r.problem("", "the configuration's keys must be plain text, not a list or mapping (\(mark))")
            } else {
                // `line L, column C: problem (context at line L, column C)`: one line, no echo of the file.
                r.problem("", "not valid YAML: \(error)")
            }
            return nil
        }
        let sections = Set(runtimeModules.map { $0.section })
        let top = r.mapping(root, "", allowed: sections.union(["bridge", "mqtt", "defaults", "homeassistant", "idle"]))

        let bridge = r.mapping(top["bridge"], "bridge", allowed: ["id", "health_file"])
        var bridgeID = loader.hostName
        if let id = r.string(bridge["id"], "bridge.id") {
            if id.isEmpty || !id.unicodeScalars.allSatisfy(BridgeIDRules.isAllowed) {
                r.problem("bridge.id", "must match [A-Za-z0-9_-]+, got '\(id)'")
            } else {
                bridgeID = id
            }
        }

        let mqtt = mqttSection(top["mqtt"], bridgeID: bridgeID)
        // systemd's RuntimeDirectory= sets RUNTIME_DIRECTORY; elsewhere /tmp is writable.
        var healthFile = loader.defaultHealthFile(bridgeID: bridgeID)
        if let h = r.string(bridge["health_file"], "bridge.health_file") {
            if h.hasPrefix("/") {
                healthFile = h
            } else {
                r.problem("bridge.health_file", "must be an absolute path, got '\(h)'")
            }
        }
        var config = Configuration(bridgeID: bridgeID, healthFile: healthFile, mqtt: mqtt)
        for module in runtimeModules {
            let section = module.section
            for (i, node) in r.list(top[section], section).enumerated() {
                if let e = module.endpoint(node, path: "\(section)[\(i)]", reader: &r) { config.endpoints.append(e) }
            }
        }
        config.defaults = defaultsSection(top["defaults"])
        config.homeAssistant = homeAssistantSection(top["homeassistant"])
        config.idle = idleSection(top["idle"], defaults: config.defaults, endpoints: config.endpoints)
        let sectionProblem = r.problems.contains { p in runtimeModules.contains { p.path.hasPrefix($0.section) } }
        if config.endpoints.isEmpty && !sectionProblem {
            // `docker: []` as much as no section at all: a bridge without a runtime serves nothing.
            // (An entry that has problems of its own already says what is wrong with it.)
            let names = runtimeModules.map { $0.section }
            r.problem(
                names[0], "no runtime configured: add a \(names.dropLast().joined(separator: ", ")) or \(names.last!) entry")
        }
        checkNamespaces(config)
        return config
    }

    /// Two endpoints of one runtime with the same `id_prefix` would claim the same ids.
    mutating func checkNamespaces(_ c: Configuration) {
        var seen: [String: String] = [:]
        var index: [RuntimeKind: Int] = [:]
        for e in c.endpoints {
            let n = index[e.kind, default: 0]
            index[e.kind] = n + 1
            let here = "\(e.kind)[\(n)]"
            let key = "\(e.kind)|" + e.idPrefix
            if let other = seen[key] {
                r.problem("\(here).id_prefix", "'\(e.idPrefix)' is also the id_prefix of \(other); give each endpoint its own")
            }
            seen[key] = here
        }
    }

    // MARK: sections

    mutating func mqttSection(_ node: YAMLNode?, bridgeID: String) -> Configuration.MQTT {
        let m = r.mapping(
            node, "mqtt",
            allowed: [
                "url", "base_topic", "client_id", "protocol", "username", "password", "password_file", "ca_file", "cert_file",
                "key_file", "queue_limit", "keepalive",
            ])
        var out = Configuration.MQTT(clientID: "idlewatcher-bridge-\(bridgeID)")
        if let url = r.string(m["url"], "mqtt.url") {
            out.url = url
            var rest = Substring(url)
            if rest.hasPrefix("mqtt://") {
                rest = rest.dropFirst(7)
            } else if rest.hasPrefix("mqtts://") {
                rest = rest.dropFirst(8)
                out.tls = true
                out.port = 8883
            } else {
                // One problem for one bad URL: what follows would only restate it.
                r.problem("mqtt.url", "must start with mqtt:// or mqtts://, got '\(url)'")
                rest = ""
            }
            if rest.isEmpty, !(url.hasPrefix("mqtt://") || url.hasPrefix("mqtts://")) {
                // already said
            } else {
                if rest.hasSuffix("/") { rest = rest.dropLast() }
                if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
                    out.host = String(rest[..<colon])
                    if let port = Int32(rest[rest.index(after: colon)...]), (1...65535).contains(port) {
                        out.port = port
                    } else {
                        r.problem(
                            "mqtt.url", "the port must be a number from 1 to 65535, got '\(rest[rest.index(after: colon)...])'")
                    }
                } else {
                    out.host = String(rest)
                }
                if out.host.isEmpty || out.host.contains("/") { r.problem("mqtt.url", "expected mqtt://HOST:PORT, got '\(url)'") }
            }
        }
        if let base = r.string(m["base_topic"], "mqtt.base_topic") {
            if base.isEmpty || base.contains("+") || base.contains("#") || base.hasPrefix("/") || base.hasSuffix("/")
                || base.contains("//")
            {
                r.problem(
                    "mqtt.base_topic", "must be a topic without wildcards and without leading or trailing '/', got '\(base)'")
            } else {
                out.baseTopic = base
            }
        }
        if let id = r.string(m["client_id"], "mqtt.client_id") {
            if id.isEmpty || id.utf8.count > 128 {
                r.problem("mqtt.client_id", "must be 1 to 128 bytes")
            } else {
                out.clientID = id
            }
        }
        if let p = m["protocol"] {
            let text = p.text ?? ""
            switch text {
            case "5", "5.0": out.protocolVersion = "5"
            case "3.1.1", "311", "4": out.protocolVersion = "3.1.1"
            default: r.problem("mqtt.protocol", "must be 5 or 3.1.1, got '\(text)'")
            }
        }
        out.username = r.string(m["username"], "mqtt.username")
        if m["password"] != nil {
            r.problem(
                "mqtt.password",
                "secrets are not read from the configuration file; use mqtt.password_file or the environment variable IDLEWATCHER_MQTT_PASSWORD"
            )
        }
        out.password = r.secret(file: m["password_file"], "mqtt.password_file", env: "IDLEWATCHER_MQTT_PASSWORD")
        if out.password != nil && out.username == nil {
            r.problem("mqtt.username", "a password is set (password_file or IDLEWATCHER_MQTT_PASSWORD) but no username")
        }
        out.caFile = r.readableFile(m["ca_file"], "mqtt.ca_file")
        out.certFile = r.readableFile(m["cert_file"], "mqtt.cert_file")
        out.keyFile = r.readableFile(m["key_file"], "mqtt.key_file")
        if (out.certFile == nil) != (out.keyFile == nil) {
            r.problem(out.certFile == nil ? "mqtt.cert_file" : "mqtt.key_file", "cert_file and key_file go together")
        }
        if (out.caFile != nil || out.certFile != nil) && !out.tls {
            r.problem("mqtt.url", "TLS files are set but the URL is not mqtts://")
        }
        if let q = r.int(m["queue_limit"], "mqtt.queue_limit", range: 1...10_000_000) { out.queueLimit = q }
        if let k = r.duration(m["keepalive"], "mqtt.keepalive") {
            if k < .seconds(5) || k > .seconds(65535) {
                r.problem("mqtt.keepalive", "must be from 5s to 65535s (MQTT's limit, about 18h)")
            } else {
                out.keepAlive = k
            }
        }
        return out
    }

    mutating func defaultsSection(_ node: YAMLNode?) -> Configuration.Defaults {
        let m = r.mapping(node, "defaults", allowed: ["stop_timeout", "allow", "operation_timeout", "command_queue_limit"])
        var out = Configuration.Defaults()
        if let d = r.duration(m["stop_timeout"], "defaults.stop_timeout") {
            if d > .seconds(3600) { r.problem("defaults.stop_timeout", "must be at most 1h") } else { out.stopTimeout = d }
        }
        if let d = r.duration(m["operation_timeout"], "defaults.operation_timeout") {
            if d < .seconds(1) {
                r.problem("defaults.operation_timeout", "must be at least 1s")
            } else {
                out.operationTimeout = d
            }
        }
        if m["allow"] != nil {
            var actions: [Action] = []
            for (i, name) in r.stringList(m["allow"], "defaults.allow").enumerated() {
                if let a = Action(rawValue: name.lowercased()) {
                    actions.append(a)
                } else {
                    r.problem(
                        "defaults.allow[\(i)]",
                        "unknown action '\(name)'; expected one of \(Action.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            out.allow = actions
        }
        if let q = r.int(m["command_queue_limit"], "defaults.command_queue_limit", range: 1...10_000) {
            out.commandQueueLimit = q
        }
        return out
    }

    mutating func homeAssistantSection(_ node: YAMLNode?) -> Configuration.HomeAssistant {
        let m = r.mapping(node, "homeassistant", allowed: ["enabled", "prefix", "remove_after"])
        var out = Configuration.HomeAssistant()
        if let e = r.bool(m["enabled"], "homeassistant.enabled") { out.enabled = e }
        if let p = r.string(m["prefix"], "homeassistant.prefix") {
            if p.isEmpty || p.contains("+") || p.contains("#") {
                r.problem("homeassistant.prefix", "must be a topic without wildcards")
            } else {
                out.prefix = p
            }
        }
        if let d = r.duration(m["remove_after"], "homeassistant.remove_after") { out.removeAfter = d }
        return out
    }
}
