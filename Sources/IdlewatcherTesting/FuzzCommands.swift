import Foundation

/// Where generated commands go: the bridge's namespace and the containers the test made.
public struct FuzzCommandNamespace: Sendable {
    /// `mqtt.base_topic`.
    public var base: String
    /// The Docker endpoint's `id_prefix` (non-empty, so that there are ids outside the namespace).
    public var idPrefix: String
    /// A running container, by its Docker name (without the prefix).
    public var runningName: String
    /// A stopped container, by its Docker name. Valid commands that change nothing go to it
    /// (`stop`, `kill` on a stopped container are "ok, nothing done").
    public var stoppedName: String

    public init(base: String = "idlewatcher", idPrefix: String, runningName: String, stoppedName: String) {
        precondition(!idPrefix.isEmpty, "the fuzz needs an id_prefix to have ids outside the namespace")
        self.base = base
        self.idPrefix = idPrefix
        self.runningName = runningName
        self.stoppedName = stoppedName
    }

    public var runningID: String { idPrefix + runningName }
    public var stoppedID: String { idPrefix + stoppedName }
    public func commandTopic(_ id: String) -> String { "\(base)/docker/\(id)/command" }
    public func replyTopic(_ id: String) -> String { "\(base)/docker/\(id)/reply" }
}

/// What the reply to a generated command must say, derived from how the case was made
/// (never from the bridge's own parser).
public enum FuzzExpectation: Sendable, Hashable {
    /// Not this bridge's namespace (or not a command topic): no reply at all.
    case ignored
    /// Exactly one reply. `codes`: the acceptable `error.code`s, or `ok` for `"ok":true`
    /// (more than one only where the contract leaves the choice open). `status`: the reply's
    /// `status`, nil for JSON null. `action`: checked when set.
    case reply(codes: Set<String>, status: String?, requestID: FuzzRequestID, action: String?)
}

/// What the reply's `request_id` must be.
public enum FuzzRequestID: Sendable, Hashable {
    /// `null`: the payload had none, or it could not be read.
    case null
    /// The request id the payload carried, echoed.
    case echo(String)
    /// Either (the payload was refused before it was read, e.g. for its size).
    case any
}

/// One generated command: a topic, a payload, and the answer it must get.
public struct FuzzCommandCase: Sendable, CustomStringConvertible {
    public var category: String
    public var topic: String
    /// The `<id>` level of the topic (where the reply goes, for cases that get one).
    public var id: String
    public var payload: [UInt8]
    public var expectation: FuzzExpectation

    public var isIgnored: Bool { expectation == .ignored }

    public var description: String {
        let text = String(decoding: payload.prefix(160), as: UTF8.self).debugDescription
        return "[\(category)] \(topic.prefix(120)) \(payload.count) bytes \(text)\(payload.count > 160 ? "…" : "")"
    }
}

/// Generates hostile command payloads and topics, each with the reply the contract demands.
///
/// Categories: random bytes, plain text (valid `status` and unknown words), empty payloads,
/// broken and non-object JSON, deep and huge JSON, wrong types for every key, numbers at the
/// edges, unicode (RTL, zero-width, emoji, invalid UTF-8, lone surrogates), unknown and
/// inapplicable keys, duplicate keys, odd topic ids inside and outside the namespace.
///
/// Nothing generated may change a container: invalid commands go to the running container
/// (they must be refused), and the only valid ones are `status`, and `stop`/`kill` with edge
/// values sent to the stopped container (the contract's "already there: ok").
public struct FuzzCommandGenerator: Sendable {
    public private(set) var random: FuzzRandom
    public let namespace: FuzzCommandNamespace

    public init(seed: UInt64, namespace: FuzzCommandNamespace) {
        random = FuzzRandom(seed: seed)
        self.namespace = namespace
    }

    public mutating func cases(_ count: Int) -> [FuzzCommandCase] { (0..<count).map { _ in next() } }

    public mutating func next() -> FuzzCommandCase {
        let make: (inout FuzzCommandGenerator) -> FuzzCommandCase = random.weighted([
            (8, { $0.randomBytes() }),
            (8, { $0.plainUnknown() }),
            (6, { $0.plainStatus() }),
            (2, { $0.emptyish() }),
            (8, { $0.brokenJSON() }),
            (4, { $0.nonObjectJSON() }),
            (5, { $0.deepJSON() }),
            (2, { $0.hugePayload() }),
            (10, { $0.wrongType() }),
            (10, { $0.numberEdge() }),
            (10, { $0.unicode() }),
            (7, { $0.unknownOrInapplicableKey() }),
            (3, { $0.duplicateKey() }),
            (2, { $0.missingAction() }),
            (6, { $0.jsonStatus() }),
            (10, { $0.oddTopic() }),
        ])
        return make(&self)
    }

    // MARK: building blocks

    static let actions = ["start", "wake", "stop", "pause", "unpause", "kill", "restart", "status"]
    /// Actions that would change a running container if they ran.
    static let destructive = ["stop", "pause", "kill", "restart"]
    static let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let asciiWord = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!?:;,@%&*()<>=~^$")
    /// Unicode that is valid in MQTT topics and JSON strings: no controls, no non-characters,
    /// no white space (so that trimming cannot matter), no case-folding tricks (no KELVIN SIGN).
    static let unicodeAlphabet: [Character] = [
        "é", "ß", "Ж", "中", "文", "ا", "ש", "Ω", "ｓ", "ｔ", "\u{202E}", "\u{202D}", "\u{200F}", "\u{200E}",
        "\u{200B}", "\u{200D}", "\u{2060}", "\u{FEFF}", "👍", "🏳️‍🌈", "e\u{301}", "😀", "𝒜", "🇩🇪", "ﷺ", "…", "’", "\u{034F}",
    ]
    static let jsonWhitespace = [" ", "\t", "\n", "\r", "\r\n  "]

    mutating func ws() -> String { random.chance(80) ? "" : random.pick(Self.jsonWhitespace) }

    /// A JSON string literal; non-ASCII and some ASCII escaped as \uXXXX when `escape`.
    static func quote(_ s: String, escape: Bool = false) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if u.value < 0x20 || (escape && u.value > 0x7E) {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else {
                        out += String(format: "\\u%04x", u.value)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A JSON object from members whose values are JSON text, in a random order, with random
    /// insignificant white space.
    mutating func object(_ members: [(String, String)], shuffle: Bool = true) -> String {
        let list = shuffle ? random.shuffled(members) : members
        let body = list.map { "\(ws())\(Self.quote($0.0))\(ws()):\(ws())\($0.1)\(ws())" }.joined(separator: ",")
        return "{" + body + "}"
    }

    /// A request id the contract accepts (any string up to 128 characters).
    mutating func validRequestID() -> String {
        switch random.int(0...5) {
        case 0: return "ha-\(random.int(0...999_999))"
        case 1: return random.string(random.int(1...40), from: Self.asciiWord)
        case 2: return random.string(random.int(1...20), from: Self.unicodeAlphabet + Self.letters)  // ≤ 128 in any measure
        case 3: return String(repeating: random.pick(["x", "9", "-"]), count: 128)
        case 4: return ""
        default: return "a\u{0}b\"c\\d\n\te"  // escapes that must survive the echo
        }
    }

    /// Optionally a request id: the members to add and what the reply must echo.
    mutating func maybeRequestID() -> ([(String, String)], FuzzRequestID) {
        guard random.chance(60) else { return ([], .null) }
        let rid = validRequestID()
        return ([("request_id", Self.quote(rid, escape: random.chance(30)))], .echo(rid))
    }

    func toRunning(
        _ category: String, _ payload: String, codes: Set<String>, requestID: FuzzRequestID, action: String? = nil
    )
        -> FuzzCommandCase
    {
        toRunning(category, Array(payload.utf8), codes: codes, requestID: requestID, action: action)
    }

    func toRunning(
        _ category: String, _ payload: [UInt8], codes: Set<String>, requestID: FuzzRequestID, action: String? = nil
    )
        -> FuzzCommandCase
    {
        let id = namespace.runningID
        return FuzzCommandCase(
            category: category, topic: namespace.commandTopic(id), id: id, payload: payload,
            expectation: .reply(codes: codes, status: "running", requestID: requestID, action: action))
    }

    /// A valid command that must change nothing: to the stopped container, or `status` anywhere.
    mutating func harmless(_ category: String, _ payload: String, requestID: FuzzRequestID, action: String) -> FuzzCommandCase {
        let toStopped = action != "status" || random.chance(50)
        let id = toStopped ? namespace.stoppedID : namespace.runningID
        return FuzzCommandCase(
            category: category, topic: namespace.commandTopic(id), id: id, payload: Array(payload.utf8),
            expectation: .reply(codes: ["ok"], status: toStopped ? "stopped" : "running", requestID: requestID, action: action))
    }

    // MARK: categories

    /// Bytes that are not UTF-8 (at least one invalid sequence): `bad_request`.
    mutating func randomBytes() -> FuzzCommandCase {
        var b = random.bytes(random.chance(95) ? random.int(1...300) : random.int(301...6000))
        let invalid: [[UInt8]] = [
            [0xFF], [0xFE], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xC3, 0x28], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80],
        ]
        let at = random.int(0...b.count)
        b.insert(contentsOf: random.pick(invalid), at: at)
        if random.chance(30) { b.insert(contentsOf: Array(random.pick(Self.destructive).utf8), at: 0) }
        return toRunning("random bytes", b, codes: ["bad_request"], requestID: .null)
    }

    /// Plain text that is not an action: `unknown_action`.
    mutating func plainUnknown() -> FuzzCommandCase {
        var text: String
        repeat {
            switch random.int(0...5) {
            case 0:
                text = random.pick([
                    "stpo", "stat", "statuss", "wakeup", "re start", "st op", "kil", "pausee", "start!", "status\u{0}",
                    "stop;rm -rf /", "stop\u{0}",
                ])
            case 1: text = random.pick(Self.actions) + random.pick(["x", "1", ".", "-now", "()", "\u{0}"])
            case 2:
                text = random.pick([
                    "$(reboot)", "`id`", "../../etc/passwd", "%s%s%n", "{{7*7}}", "${jndi:ldap://x/a}", "'; DROP TABLE c; --",
                ])
            default: text = random.string(random.int(1...60), from: Self.asciiWord)
            }
        } while Self.actions.contains(text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()) || text.isEmpty
            || ["{", "[", "\""].contains(where: { text.hasPrefix($0) })
        return toRunning("plain unknown", text, codes: ["unknown_action"], requestID: .null)
    }

    /// `status` in any case with ASCII white space around it: ok. Exactly 4096 bytes too.
    mutating func plainStatus() -> FuzzCommandCase {
        var word = String("status".map { random.chance(50) ? Character($0.uppercased()) : $0 })
        let pad = [" ", "\t", "\n", "\r", "\r\n"]
        if random.chance(10) {
            word = String(repeating: " ", count: 4096 - 6 - 1) + word + "\n"  // the largest payload accepted
        } else {
            word =
                (0..<random.int(0...3)).map { _ in random.pick(pad) }.joined() + word
                + (0..<random.int(0...3)).map { _ in random.pick(pad) }.joined()
        }
        return harmless("plain status", word, requestID: .null, action: "status")
    }

    mutating func emptyish() -> FuzzCommandCase {
        let text = random.pick(["", " ", "\n", "\t \r\n", String(repeating: " ", count: 4096)])
        return toRunning("empty", text, codes: ["bad_request"], requestID: .null)
    }

    /// Not JSON, though it starts like JSON; destructive actions inside: `bad_request`.
    mutating func brokenJSON() -> FuzzCommandCase {
        let action = random.pick(Self.destructive)
        let full = object([("action", Self.quote(action)), ("timeout", "5"), ("request_id", "\"r\"")], shuffle: false)
        let text: String
        switch random.int(0...3) {
        case 0:
            // A proper prefix of an object is never a whole JSON text.
            let cut = random.int(1...(full.utf8.count - 1))
            text = String(decoding: Array(full.utf8.prefix(cut)), as: UTF8.self)
            if text.utf8.count != cut { return brokenJSON() }  // cut inside a character: try again
        case 1:
            text = random.pick([
                "{\"action\":\"\(action)\",}", "{'action':'\(action)'}", "{action:\"\(action)\"}",
                "{\"action\":\"\(action)\"/*x*/}", "{\"action\":\"\(action)\",\"timeout\":NaN}",
                "{\"action\":\"\(action)\"}{\"action\":\"\(action)\"}", "{\"action\":\"\(action)\",\"timeout\":010}",
                "{\"action\":\"\(action)\",\"timeout\":0x10}", "{\"action\":\"\(action)\",\"timeout\":+5}",
                "{\"action\":\"\(action)\",\"timeout\":Infinity}", "{\"action\":\"\(action)\",\"timeout\":-}",
                "{\"action\":\"\(action)\",\"timeout\":1.}", "{\"action\":\"\(action)\",\"timeout\":.5}",
                "{\"action\":\"\(action)\",\"x\":TRUE}", "{\"action\":\"\(action)\",\"x\":nul}",
                "{\"action\":\"\(action)\" \"timeout\":5}", "{\"action\":\"\(action)\\q\"}", "{\"action\":\"\(action)\"\u{0}}",
                "{\"action\":\"\(action)\n\"}", "[\"\(action)\"", "\"\(action)", "{\"action\"}", "{:\"\(action)\"}",
            ])
        case 2:
            text = full + random.pick(["x", "}", "]", ",", "0", "\"", "{}", "null"])
        default:
            text = random.pick(["{", "[", "\""]) + random.string(random.int(0...80), from: Self.asciiWord)
        }
        return toRunning("broken JSON", text, codes: ["bad_request"], requestID: .null)
    }

    /// JSON that is not an object.
    mutating func nonObjectJSON() -> FuzzCommandCase {
        if random.chance(75) {
            let text = random.pick([
                "[\"stop\"]", "\"stop\"", "[]", "[{\"action\":\"kill\"}]", "\"\\u0073top\"", "[[[]]]", "\"\"", "[null]",
                "[\"action\",\"kill\"]",
            ])
            return toRunning("non-object JSON", text, codes: ["bad_request"], requestID: .null)
        }
        // A bare number or literal reads as plain text or as JSON: the contract allows either answer.
        let text = random.pick(["42", "true", "null", "-0", "1e309", "false", "0", "9223372036854775808"])
        return toRunning("bare JSON scalar", text, codes: ["bad_request", "unknown_action"], requestID: .null)
    }

    /// Nesting far beyond what a command needs, within 4096 bytes.
    mutating func deepJSON() -> FuzzCommandCase {
        let depth = random.chance(50) ? random.int(15...40) : random.int(41...1900)
        let (open, close) = random.pick([("[", "]"), ("{\"a\":", "}")])
        let inner =
            String(repeating: open, count: depth) + "1" + String(repeating: close, count: random.chance(80) ? depth : depth / 2)
        let text: String
        switch random.int(0...2) {
        case 0: text = "{\"action\":\"\(random.pick(Self.destructive))\",\"x\":\(inner)}"
        case 1: text = "{\"action\":\(inner)}"
        default: text = String(repeating: "[", count: random.int(100...4000))
        }
        // The request id may or may not be read before the nesting is refused.
        return toRunning("deep JSON", text, codes: ["bad_request"], requestID: .any)
    }

    /// Over 4096 bytes: `bad_request`, whatever the bytes are (even a valid command).
    mutating func hugePayload() -> FuzzCommandCase {
        let size = random.chance(90) ? random.int(4097...20_000) : random.int(20_001...262_144)
        let text: String
        switch random.int(0...3) {
        case 0: text = "{\"action\":\"status\",\"request_id\":\"" + String(repeating: "x", count: size) + "\"}"
        case 1: text = "status" + String(repeating: " ", count: size)
        case 2: text = "{\"action\":\"kill\",\"pad\":[" + Array(repeating: "1", count: size / 2).joined(separator: ",") + "]}"
        default: text = String(repeating: "\u{200B}", count: size / 3 + 1) + "stop"
        }
        return toRunning("huge", text, codes: ["bad_request"], requestID: .any)
    }

    static let wrongValues = ["42", "-1", "true", "false", "[]", "{}", "[1,\"a\"]", "{\"a\":1}", "1.5", "null"]

    /// A wrong JSON type for one key of an otherwise valid command: `bad_request`.
    mutating func wrongType() -> FuzzCommandCase {
        let (rid, echo) = maybeRequestID()
        switch random.int(0...3) {
        case 0:
            let v = random.pick(Self.wrongValues)
            return toRunning("wrong type: action", object([("action", v)] + rid), codes: ["bad_request"], requestID: echo)
        case 1:
            let v = random.pick(Self.wrongValues.filter { $0 != "null" })
            let text = object([("action", Self.quote(random.pick(Self.destructive))), ("request_id", v)])
            return toRunning("wrong type: request_id", text, codes: ["bad_request"], requestID: .null)
        case 2:
            // Signal takes a string or a number; anything else is wrong.
            let v = random.pick(["true", "false", "[]", "{}", "[15]", "{\"n\":15}", "null"])
            let text = object([("action", Self.quote(random.pick(["stop", "kill"]))), ("signal", v)] + rid)
            return toRunning("wrong type: signal", text, codes: ["bad_request"], requestID: echo)
        default:
            let v = random.pick(["\"10\"", "\"\"", "true", "[]", "{}", "[10]", "null", "\"10s\""])
            let text = object([("action", Self.quote(random.pick(["stop", "restart"]))), ("timeout", v)] + rid)
            return toRunning("wrong type: timeout", text, codes: ["bad_request"], requestID: echo)
        }
    }

    /// Numbers at and beyond the edges of timeout (0–3600) and signal (1–64).
    mutating func numberEdge() -> FuzzCommandCase {
        let (rid, echo) = maybeRequestID()
        switch random.int(0...4) {
        case 0:
            let v = random.pick([
                "-1", "3601", "1.5", "0.5", "3600.5", "1e309", "-1e309", "9223372036854775808", "-9223372036854775809",
                "18446744073709551616", "99999999999999999999999", "1e-7", "100000",
            ])
            let text = object([("action", Self.quote(random.pick(["stop", "restart"]))), ("timeout", v)] + rid)
            return toRunning("timeout out of range", text, codes: ["bad_request"], requestID: echo)
        case 1:
            let v = random.pick(["0", "-0", "1", "3599", "3600"])
            let text = object([("action", "\"stop\""), ("timeout", v)] + rid)
            return harmless("timeout at the edge", text, requestID: echo, action: "stop")
        case 2:
            let v = random.pick([
                "0", "-0", "-1", "65", "9223372036854775808", "1e309", "1.5", "15.5", "128", "-9", "\"SIGFOO\"", "\"SIG\"",
                "\"\"", "\"TERM\\u0000\"", "\"ＴＥＲＭ\"", "\"SIGSIGTERM\"", "\"SIG-15\"", "\"S1GTERM\"", "\"SIGTERMX\"", "\"💀\"",
            ])
            let text = object([("action", Self.quote(random.pick(["stop", "kill"]))), ("signal", v)] + rid)
            return toRunning("signal out of range", text, codes: ["bad_request"], requestID: echo)
        case 3:
            let v = random.pick(["1", "9", "15", "63", "64", "\"SIGTERM\"", "\"TERM\"", "\"SIGKILL\"", "\"HUP\"", "\"SIGUSR1\""])
            let action = random.pick(["stop", "kill"])
            var members = [("action", Self.quote(action)), ("signal", v)] + rid
            if action == "stop", random.chance(50) { members.append(("timeout", random.pick(["0", "3600"]))) }
            return harmless("signal at the edge", object(members), requestID: echo, action: action)
        default:
            // Numbers where a string is expected.
            let v = random.pick(["-0", "1e309", "9223372036854775808", "0", "1E+2"])
            return toRunning("number as action", object([("action", v)] + rid), codes: ["bad_request"], requestID: echo)
        }
    }

    mutating func unicode() -> FuzzCommandCase {
        let (rid, echo) = maybeRequestID()
        switch random.int(0...7) {
        case 0:
            // Plain text with invisible or look-alike characters around or inside an action.
            let word = random.pick(Self.actions)
            let mark = random.string(random.int(1...3), from: Self.unicodeAlphabet)
            var text: String
            switch random.int(0...3) {
            case 0: text = mark + word
            case 1: text = word + mark
            case 2:
                let cut = word.index(word.startIndex, offsetBy: random.int(1...(word.count - 1)))
                text = word[..<cut] + mark + word[cut...]
            default: text = random.pick(["ｓｔａｔｕｓ", "ｓｔｏｐ", "ＫＩＬＬ", "ѕtatus", "stοp", "kіll", "🛑", "⏹️", "ʀᴇsᴛᴀʀᴛ"])
            }
            if text.unicodeScalars.first.map({ "{[\"".unicodeScalars.contains($0) }) == true { text = "x" + text }
            return toRunning("unicode plain", text, codes: ["unknown_action"], requestID: .null)
        case 1:
            let action = random.pick(Self.actions) + random.string(random.int(1...4), from: Self.unicodeAlphabet)
            let text = object([("action", Self.quote(action, escape: random.chance(50)))] + rid)
            return toRunning("unicode action", text, codes: ["unknown_action"], requestID: echo)
        case 2:
            // A valid action written with \u escapes: ok.
            let word = random.pick(["status", "STATUS", "Status"])
            var lit = "\""
            for u in word.unicodeScalars { lit += random.chance(60) ? String(format: "\\u%04X", u.value) : String(u) }
            lit += "\""
            return harmless("escaped action", object([("action", lit)] + rid), requestID: echo, action: "status")
        case 3:
            let id = random.string(random.int(1...20), from: Self.unicodeAlphabet + Self.letters)
            let text = object([("action", "\"status\""), ("request_id", Self.quote(id, escape: random.chance(50)))])
            return harmless("unicode request_id", text, requestID: .echo(id), action: "status")
        case 4:
            // Invalid UTF-8 inside a JSON string.
            let bad: [UInt8] = random.pick([
                [0xC3, 0x28], [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
            ])
            let key = random.pick(["action", "request_id"])
            let value: [UInt8] = key == "action" ? Array("kill".utf8) + bad : Array("r".utf8) + bad
            var payload = Array("{\"\(key)\":\"".utf8) + value + Array("\"".utf8)
            payload += Array((key == "action" ? "}" : ",\"action\":\"stop\"}").utf8)
            return toRunning("invalid UTF-8 in JSON", payload, codes: ["bad_request"], requestID: .null)
        case 5:
            // Lone or broken surrogates and bad escapes.
            let esc = random.pick([
                "\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800x", "\\udbff\\udbff", "\\u12", "\\x41", "\\uZZZZ", "\\U0041",
            ])
            let text = random.chance(50) ? "{\"action\":\"kill\(esc)\"}" : "{\"action\":\"stop\",\"request_id\":\"\(esc)\"}"
            return toRunning("bad escape", text, codes: ["bad_request"], requestID: .null)
        case 6:
            // Unicode in keys: an unknown key (and so no "action" where the key looked like one).
            let key = random.pick(["act\u{200D}ion", "ａction", "action\u{FEFF}", "\u{202E}noitca", "åction"])
            let text = object([(key, Self.quote(random.pick(Self.destructive)))] + rid)
            return toRunning("unicode key", text, codes: ["bad_request"], requestID: echo)
        default:
            // A byte-order mark in front of plain text is not white space.
            let text = "\u{FEFF}" + random.pick(Self.actions)
            return toRunning("byte-order mark", text, codes: ["unknown_action"], requestID: .null)
        }
    }

    /// Keys the contract does not know, or that do not apply to the action: `bad_request`.
    mutating func unknownOrInapplicableKey() -> FuzzCommandCase {
        let (rid, echo) = maybeRequestID()
        if random.chance(50) {
            let key = random.pick([
                "force", "Action", "ACTION", "action ", " action", "signal\u{0}", "__proto__", "constructor", "",
                "timeout\u{200B}",
                "request-id", "requestId", "id", "container", "runtime", "bridge", "args", "cmd",
            ])
            let value = random.pick(["true", "1", "\"x\"", "null", "[]", "{}", "\"stop\""])
            let text = object([("action", Self.quote(random.pick(Self.destructive + ["status"]))), (key, value)] + rid)
            return toRunning("unknown key", text, codes: ["bad_request"], requestID: echo)
        }
        // A valid value under a key the action does not take.
        if random.chance(50) {
            let action = random.pick(["start", "wake", "pause", "unpause", "restart", "status"])
            let text = object([("action", Self.quote(action)), ("signal", random.pick(["15", "\"SIGTERM\"", "9"]))] + rid)
            return toRunning("signal not applicable", text, codes: ["bad_request"], requestID: echo)
        }
        let action = random.pick(["start", "wake", "pause", "unpause", "kill", "status"])
        let text = object([("action", Self.quote(action)), ("timeout", random.pick(["0", "10", "3600"]))] + rid)
        return toRunning("timeout not applicable", text, codes: ["bad_request"], requestID: echo)
    }

    /// The same key twice: the bridge must not pick one (another reader may pick the other).
    mutating func duplicateKey() -> FuzzCommandCase {
        let text = random.pick([
            "{\"action\":\"status\",\"action\":\"stop\"}", "{\"action\":\"kill\",\"action\":\"status\"}",
            "{\"action\":\"stop\",\"timeout\":5,\"timeout\":3601}",
            "{\"action\":\"status\",\"request_id\":\"a\",\"request_id\":\"b\"}",
            "{\"action\":\"kill\",\"signal\":1,\"signal\":9}",
        ])
        return toRunning("duplicate key", text, codes: ["bad_request"], requestID: .null)
    }

    mutating func missingAction() -> FuzzCommandCase {
        let (rid, echo) = maybeRequestID()
        let extra = random.pick([[], [("signal", "9")], [("timeout", "5")]])
        return toRunning("no action", object(extra + rid), codes: ["bad_request"], requestID: echo)
    }

    /// Valid `status` as JSON, any key order and white space: ok.
    mutating func jsonStatus() -> FuzzCommandCase {
        let (rid, echo) = maybeRequestID()
        let action = random.pick(["status", "STATUS", "Status", "sTaTuS"])
        return harmless("JSON status", object([("action", "\"\(action)\"")] + rid), requestID: echo, action: "status")
    }

    /// Topics that are not this bridge's, and ids in its namespace that match no container.
    mutating func oddTopic() -> FuzzCommandCase {
        let ns = namespace
        let (rid, echo) = maybeRequestID()
        let action = random.pick(Self.actions)
        let payload = random.chance(50) ? action : object([("action", Self.quote(action))] + rid)
        let replyRID: FuzzRequestID = payload.hasPrefix("{") ? echo : .null
        func notFound(_ id: String) -> FuzzCommandCase {
            FuzzCommandCase(
                category: "no such container", topic: ns.commandTopic(id), id: id, payload: Array(payload.utf8),
                expectation: .reply(codes: ["not_found"], status: nil, requestID: replyRID, action: nil))
        }
        func ignored(_ topic: String, _ category: String) -> FuzzCommandCase {
            FuzzCommandCase(category: category, topic: topic, id: "", payload: Array(payload.utf8), expectation: .ignored)
        }
        switch random.int(0...10) {
        case 0: return notFound(ns.idPrefix)  // the prefix alone
        case 1: return notFound(ns.idPrefix + random.string(random.int(1...30), from: Self.unicodeAlphabet + Self.letters))
        case 2: return notFound(ns.idPrefix + random.string(random.int(1000...30_000), from: Self.asciiWord))
        case 3: return notFound(ns.idPrefix + ns.runningName + random.pick([" ", "\u{200B}", "x", ".", "\u{202E}", "-"]))
        case 4: return notFound(ns.idPrefix + ns.runningName.uppercased())
        case 5:
            // A real container's name without the prefix is another bridge's id: never acted on.
            return ignored(ns.commandTopic(random.pick([ns.runningName, ns.stoppedName])), "outside the namespace")
        case 6:
            let id = random.pick([
                ns.idPrefix.uppercased() + ns.runningName, "x" + ns.runningID, " " + ns.runningID,
                "\u{200B}" + ns.runningID, random.string(random.int(1...50), from: Self.unicodeAlphabet),
            ])
            return ignored(ns.commandTopic(id), "outside the namespace")
        case 7:
            let topic = random.pick([
                "\(ns.base)/proxmox/\(ns.runningID)/command", "\(ns.base)/podman/\(ns.runningID)/command",
                "\(ns.base)/Docker/\(ns.runningID)/command", "\(ns.base)2/docker/\(ns.runningID)/command",
                "\(ns.base.uppercased())/docker/\(ns.runningID)/command", "/\(ns.base)/docker/\(ns.runningID)/command",
                "\(ns.base)//\(ns.runningID)/command", "\(ns.base)/bridge/\(ns.runningID)/command",
            ])
            return ignored(topic, "another base or runtime")
        case 8:
            let topic = random.pick([
                "\(ns.base)/docker/\(ns.runningID)/command/x", "\(ns.base)/docker/\(ns.runningID)/x/command",
                "\(ns.base)/docker/\(ns.runningID)/Command", "\(ns.base)/docker/\(ns.runningID)/commands",
                "\(ns.base)/docker/\(ns.runningID)/reply", "\(ns.base)/docker/\(ns.runningID)/event",
                "\(ns.base)/docker/\(ns.runningID)", "\(ns.base)/docker", "\(ns.base)/docker/\(ns.runningID)/command/",
            ])
            return ignored(topic, "not a command topic")
        case 9:
            // An empty id level is no id.
            return ignored("\(ns.base)/docker//command", "empty id")
        default:
            return ignored(ns.commandTopic(ns.idPrefix.dropLast() + "_" + ns.runningName), "outside the namespace")
        }
    }
}
