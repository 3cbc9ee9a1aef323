import Foundation

/// One generated configuration file and what `check-config` must say about it.
public struct FuzzConfigCase: Sendable, CustomStringConvertible {
    public var category: String
    /// The file's bytes (not always UTF-8).
    public var bytes: [UInt8]
    /// The key path a problem line must name (`mqtt.queue_limit`, matched by
    /// `mqtt.queue_limit: …` or `mqtt.queue_limit[2]: …`), when the case broke a key in a way
    /// that is wrong by docs/configuration.md. Nil: only "no crash, one problem per line".
    public var expectedPath: String?

    /// Whether `line` is a problem line for ``expectedPath``.
    public func names(_ line: Substring) -> Bool {
        guard let p = expectedPath else { return true }
        return line.hasPrefix(p + ": ") || line.hasPrefix(p + "[")
    }
    /// The unchanged valid file: must pass.
    public var mustBeValid: Bool

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String {
        "[\(category)] expect \(mustBeValid ? "OK" : expectedPath ?? "anything") — \(text.prefix(300).debugDescription)"
    }
}

/// Generates configuration files: the documented example with one or more keys broken (wrong
/// types, out-of-range numbers, bad URLs, secrets in the file, unknown keys), YAML that is
/// barely YAML (tabs, anchors, tags, deep nesting, huge scalars, several documents) and bytes
/// that are not YAML at all.
///
/// Secrets: the generated files name no secret file; the Proxmox entry's token secret must
/// come from `IDLEWATCHER_PROXMOX_TOKEN_SECRET` (set it when checking).
public struct FuzzConfigGenerator: Sendable {
    public private(set) var random: FuzzRandom

    public init(seed: UInt64) { random = FuzzRandom(seed: seed) }

    /// The environment the files expect (a Proxmox token secret).
    public static let environment = ["IDLEWATCHER_PROXMOX_TOKEN_SECRET": "fuzz-secret-0000"]

    public mutating func cases(_ count: Int) -> [FuzzConfigCase] { (0..<count).map { _ in next() } }

    public mutating func next() -> FuzzConfigCase {
        let make: (inout FuzzConfigGenerator) -> FuzzConfigCase = random.weighted([
            (4, { $0.valid() }),
            (40, { $0.brokenKey() }),
            (8, { $0.unknownKey() }),
            (6, { $0.wrongSection() }),
            (14, { $0.oddYAML() }),
            (6, { $0.randomBytes() }),
            (6, { $0.truncated() }),
            (6, { $0.hostileScalars() }),
        ])
        return make(&self)
    }

    // MARK: the document

    /// A section: a mapping, a list of mappings (docker, proxmox), or a raw value replacing it.
    enum Section {
        case map([(String, String)])
        case list([[(String, String)]])
        case raw(String)
    }

    /// The documented keys with valid values (YAML flow text).
    static func base(proxmox: Bool) -> [(String, Section)] {
        var doc: [(String, Section)] = [
            ("bridge", .map([("id", "host1"), ("health_file", "/tmp/iw-fuzz.health")])),
            (
                "mqtt",
                .map([
                    ("url", "mqtt://127.0.0.1:1883"), ("base_topic", "idlewatcher"), ("client_id", "fuzz-1"), ("protocol", "5"),
                    ("username", "bridge"), ("queue_limit", "100"), ("keepalive", "30s"),
                ])
            ),
            (
                "docker",
                .list([
                    [
                        ("url", "unix:///var/run/docker.sock"), ("id_prefix", "\"\""), ("include", "[]"), ("exclude", "[]"),
                        ("protected", "[]"),
                    ]
                ])
            ),
            (
                "defaults",
                .map([
                    ("stop_timeout", "10s"), ("allow", "[start, wake, stop, pause, unpause, kill, restart, status]"),
                    ("operation_timeout", "60s"), ("command_queue_limit", "16"),
                ])
            ),
            ("homeassistant", .map([("enabled", "true"), ("prefix", "homeassistant"), ("remove_after", "24h")])),
        ]
        if proxmox {
            doc.append(
                (
                    "proxmox",
                    .list([
                        [
                            ("url", "https://pve1.lan:8006"), ("token_id", "\"root@pam!bridge\""), ("nodes", "[]"),
                            ("vmids", "[100, 105]"),
                            ("poll_interval", "2s"), ("id_prefix", "pve-"), ("request_timeout", "15s"),
                            ("insecure_skip_verify", "false"),
                        ]
                    ])
                ))
        }
        return doc
    }

    static func render(_ doc: [(String, Section)]) -> String {
        var out = ""
        for (name, section) in doc {
            switch section {
            case .map(let pairs):
                out += "\(name):\n"
                for (k, v) in pairs { out += "  \(k): \(v)\n" }
            case .list(let entries):
                out += "\(name):\n"
                for entry in entries {
                    for (n, (k, v)) in entry.enumerated() { out += (n == 0 ? "  - " : "    ") + "\(k): \(v)\n" }
                }
            case .raw(let v):
                out += "\(name): \(v)\n"
            }
        }
        return out
    }

    /// A YAML double-quoted scalar for any text.
    static func quote(_ s: String) -> String {
        if !s.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\"" || $0 == "\\" })
        {
            return "\"" + s + "\""
        }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if u.value < 0x20 || u.value == 0x7F || (0x80...0x9F).contains(u.value) {
                    out += String(format: "\\x%02X", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Replaces `key` in section `name` (entry `entry` of a list section).
    static func set(_ doc: inout [(String, Section)], _ name: String, entry: Int = 0, _ key: String, _ value: String?) {
        guard let i = doc.firstIndex(where: { $0.0 == name }) else { return }
        func apply(_ pairs: inout [(String, String)]) {
            if let j = pairs.firstIndex(where: { $0.0 == key }) {
                if let value { pairs[j].1 = value } else { pairs.remove(at: j) }
            } else if let value {
                pairs.append((key, value))
            }
        }
        switch doc[i].1 {
        case .map(var pairs):
            apply(&pairs)
            doc[i].1 = .map(pairs)
        case .list(var entries):
            apply(&entries[entry])
            doc[i].1 = .list(entries)
        case .raw:
            break
        }
    }

    func make(_ category: String, _ doc: [(String, Section)], expect prefix: String? = nil, valid: Bool = false) -> FuzzConfigCase
    {
        FuzzConfigCase(category: category, bytes: Array(Self.render(doc).utf8), expectedPath: prefix, mustBeValid: valid)
    }

    // MARK: categories

    mutating func valid() -> FuzzConfigCase {
        var doc = Self.base(proxmox: random.chance(50))
        // Valid variations: YAML 1.1 booleans, MQTT 3.1.1, TLS-less URLs without a port.
        if random.chance(50) { Self.set(&doc, "homeassistant", "enabled", random.pick(["yes", "no", "on", "off", "false"])) }
        if random.chance(50) { Self.set(&doc, "mqtt", "protocol", random.pick(["\"3.1.1\"", "5", "\"5\""])) }
        if random.chance(30) {
            Self.set(&doc, "mqtt", "url", random.pick(["mqtt://broker", "mqtts://broker.lan:8883", "mqtt://[::1]:1883"]))
        }
        if random.chance(30) {
            Self.set(&doc, "defaults", "stop_timeout", random.pick(["0s", "1h", "1m30s", "500ms", "59m59s"]))
        }
        return make("valid", doc, valid: true)
    }

    /// (section, entry path, key, values that are wrong by docs/configuration.md)
    static let broken: [(String, String, String, [String])] = [
        ("bridge", "bridge", "id", ["\"a b\"", "a/b", "\"\"", "ü", "a+b", "[x]", "{a: 1}", "\"host\\n1\"", "\"\\u202Ehost\""]),
        ("bridge", "bridge", "health_file", ["relative/path", "[a]", "\"\""]),
        (
            "mqtt", "mqtt", "url",
            [
                "http://x:1883", "mqtt://x:0", "mqtt://x:65536", "mqtt://:1883", "mqtt://x:abc", "mqtt://a/b:1", "[mqtt://x]",
                "\"\"",
                "mqtt://x:99999999999999999999", "mqtt://x:-1", "tcp://x:1883", "\"mqtt://x:1883\\n\"",
            ]
        ),
        ("mqtt", "mqtt", "base_topic", ["a/#", "\"+\"", "\"\"", "/a", "a/", "a//b", "{a: b}", "\"#\""]),
        ("mqtt", "mqtt", "client_id", ["\"\"", String(repeating: "c", count: 129), "[a]"]),
        ("mqtt", "mqtt", "protocol", ["4.5", "6", "mqtt", "[5]", "3", "\"\""]),
        ("mqtt", "mqtt", "password", ["hunter2", "\"\"", "[a]"]),
        ("mqtt", "mqtt", "password_file", ["/nonexistent/pw", "\"\"", "/proc/self/nonexistent"]),
        ("mqtt", "mqtt", "ca_file", ["/nonexistent/ca.pem"]),
        (
            "mqtt", "mqtt", "queue_limit",
            ["0", "-1", "abc", "1.5", "10000001", "99999999999999999999", "[1]", "0x10", ".inf", "1_000"]
        ),
        ("mqtt", "mqtt", "keepalive", ["1s", "10", "-1s", "abc", "19h", "4999ms", "[30s]", "1e3s"]),
        (
            "docker", "docker[0]", "url",
            ["ftp://x", "unix://relative", "tcp://", "tcp://a/b", "[a]", "\"\"", "unix://", "https://"]
        ),
        ("docker", "docker[0]", "id_prefix", ["a/b", "a+", "\"#\"", "\"a b\"", "[a]", "\"\\ta\""]),
        ("docker", "docker[0]", "include", ["web", "{a: b}", "[\"\"]", "[[a]]", "[{a: b}]"]),
        ("docker", "docker[0]", "exclude", ["web", "[\"\"]", "[[a]]"]),
        ("docker", "docker[0]", "protected", ["web", "[\"\"]", "{a: 1}"]),
        ("docker", "docker[0]", "ca_file", ["/nonexistent/ca.pem"]),
        ("defaults", "defaults", "stop_timeout", ["ten", "2h", "10", "-1s", "1.5s", "[10s]", "99999999999999999999h"]),
        ("defaults", "defaults", "operation_timeout", ["500ms", "x", "0s", "{}"]),
        ("defaults", "defaults", "allow", ["start", "{a: b}"]),
        ("defaults", "defaults", "command_queue_limit", ["0", "10001", "x", "-5"]),
        ("homeassistant", "homeassistant", "enabled", ["maybe", "1", "\"\"", "[true]", "TRUEish"]),
        ("homeassistant", "homeassistant", "prefix", ["a/#", "\"\"", "\"+\""]),
        ("homeassistant", "homeassistant", "remove_after", ["forever", "1y", "[1h]"]),
        ("proxmox", "proxmox[0]", "url", ["ftp://x", "pve:8006", "[a]"]),
        ("proxmox", "proxmox[0]", "token_id", ["rootpam", "\"a@b!\"", "\"!x\"", "[a]"]),
        ("proxmox", "proxmox[0]", "token_secret", ["abc", "\"\""]),
        ("proxmox", "proxmox[0]", "vmids", ["[99]", "[abc]", "100", "[1.5]", "[-100]", "[99999999999999999999]"]),
        ("proxmox", "proxmox[0]", "poll_interval", ["10ms", "199ms", "x", "[2s]"]),
        ("proxmox", "proxmox[0]", "insecure_skip_verify", ["maybe", "[false]"]),
        ("proxmox", "proxmox[0]", "nodes", ["pve1", "[\"\"]"]),
        ("proxmox", "proxmox[0]", "request_timeout", ["x", "15"]),
        ("proxmox", "proxmox[0]", "id_prefix", ["a/b", "\"a b\""]),
    ]

    /// One (sometimes two or three) documented keys set to a wrong value.
    mutating func brokenKey() -> FuzzConfigCase {
        var doc = Self.base(proxmox: true)
        let count = random.weighted([(6, 1), (2, 2), (1, 3)])
        var first: String? = nil
        for _ in 0..<count {
            let (section, path, key, values) = random.pick(Self.broken)
            let value = random.pick(values)
            Self.set(&doc, section, key, value)
            if first == nil { first = "\(path).\(key)" }
        }
        if random.chance(10) {
            let (section, path, key, _) = random.pick(Self.broken.filter { $0.0 == "defaults" && $0.2 == "allow" })
            Self.set(&doc, section, key, "[start, explode, \(random.pick(["Kill", "status", "x"]))]")
            return make("broken key", doc, expect: "\(path).\(key)[1]")
        }
        return make("broken key", doc, expect: first)
    }

    mutating func unknownKey() -> FuzzConfigCase {
        var doc = Self.base(proxmox: random.chance(50))
        let key = random.pick(["colour", "pasword", "Url", "url2", "_", "ключ", "a.b", "mqtt"])
        let where_ = random.pick(["bridge", "mqtt", "defaults", "homeassistant", "docker"])
        Self.set(&doc, where_, key, random.pick(["1", "x", "[a]", "{b: c}", "\"\""]))
        return make("unknown key", doc, expect: "\(where_ == "docker" ? "docker[0]" : where_).\(key)")
    }

    /// A whole section of the wrong type.
    mutating func wrongSection() -> FuzzConfigCase {
        var doc = Self.base(proxmox: false)
        let name = random.pick(["bridge", "mqtt", "docker", "defaults", "homeassistant"])
        let value = name == "docker" ? random.pick(["x", "{url: unix:///x}", "42"]) : random.pick(["[1, 2]", "x", "42", "[]"])
        if let i = doc.firstIndex(where: { $0.0 == name }) { doc[i].1 = .raw(value) }
        if name == "docker" {
            // Without a runtime the "no runtime" problem may come too; the docker line must be there.
            return make("wrong section", doc, expect: "docker")
        }
        return make("wrong section", doc, expect: name)
    }

    /// YAML at its odd corners: tabs, anchors, tags, documents, nesting, merge keys, duplicates.
    mutating func oddYAML() -> FuzzConfigCase {
        let base = Self.render(Self.base(proxmox: random.chance(50)))
        let text: String
        switch random.int(0...13) {
        case 0: text = base.replacingOccurrences(of: "  ", with: "\t")
        case 1: text = "a: &a [x, *a]\n" + base
        case 2: text = "bridge: *nope\n" + base
        case 3: text = base + "---\n" + base
        case 4: text = "mqtt: !!binary aGVsbG8=\n" + base
        case 5: text = "bridge: !custom {id: x}\n" + base
        case 6: text = "x: " + String(repeating: "[", count: random.int(10...20_000)) + "\n" + base
        case 7: text = "x: " + String(repeating: "{a: ", count: random.int(10...5_000)) + "\n" + base
        case 8: text = base + "mqtt:\n  url: mqtt://other:1883\n"  // a duplicate section
        case 9: text = "defaults: &d {stop_timeout: 10s}\nhomeassistant:\n  <<: *d\n" + base
        case 10: text = "? [complex, key]\n: value\n" + base
        case 11:
            var lines = ""
            for i in 0..<random.int(100...1000) { lines += "  k\(i): v\n" }
            text = "bridge:\n" + lines + base
        case 12: text = "%YAML 9.9\n---\n" + base
        default: text = base.replacingOccurrences(of: ": ", with: random.pick([":", " : ", ":\t", ": : "]))
        }
        return FuzzConfigCase(category: "odd YAML", bytes: Array(text.utf8), expectedPath: nil, mustBeValid: false)
    }

    mutating func randomBytes() -> FuzzConfigCase {
        var b = random.bytes(random.int(0...2000))
        if random.chance(50) { b = Array(Self.render(Self.base(proxmox: false)).utf8) + b }
        return FuzzConfigCase(category: "random bytes", bytes: b, expectedPath: nil, mustBeValid: false)
    }

    mutating func truncated() -> FuzzConfigCase {
        let full = Array(Self.render(Self.base(proxmox: true)).utf8)
        let cut = random.int(0...(full.count - 1))
        return FuzzConfigCase(category: "truncated", bytes: Array(full.prefix(cut)), expectedPath: nil, mustBeValid: false)
    }

    /// Scalars no one would write: huge, invisible, control characters, RTL, NUL.
    mutating func hostileScalars() -> FuzzConfigCase {
        var doc = Self.base(proxmox: false)
        let (section, _, key, _) = random.pick(Self.broken.filter { $0.0 != "proxmox" })
        let value: String
        switch random.int(0...4) {
        case 0: value = Self.quote(String(repeating: random.pick(["a", "é", "😀", "/"]), count: random.int(1000...50_000)))
        case 1: value = Self.quote("\u{202E}" + random.string(random.int(1...20), from: FuzzCommandGenerator.unicodeAlphabet))
        case 2: value = Self.quote("x\u{0}y\u{7}z\u{1B}[31m")
        case 3: value = Self.quote("line1\nline2\r\nline3")
        default: value = random.pick(["~", "null", "\"\"", "''", "!!null ''", "-", "|\n    multi\n    line"])
        }
        Self.set(&doc, section, key, value)
        return make("hostile scalar", doc)
    }
}
