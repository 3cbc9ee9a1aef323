/// A parsed JSON value.
///
/// A small parser of our own rather than Foundation's: it bounds nesting depth (hostile command
/// payloads), keeps numbers as their text (Docker's `timeNano` does not fit a Double) and
/// tells types apart exactly (`"timeout": "10"` is not `10`).
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number as it was written, validated as JSON number syntax.
    case number(String)
    /// Decoded text (escapes resolved), valid UTF-8.
    case string(String)
    case array([JSON])
    /// The members; keys are unique (the parser refuses a key given twice).
    case object([String: JSON])

    /// The member `key` of an object; nil if absent, or if this is not an object.
    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The text if this is a string; nil for any other type (`"10"` is a string, `10` is not).
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The number if it is a whole number that fits an `Int64`, written without fraction or exponent; else nil.
    public var int64: Int64? {
        if case .number(let n) = self { return Int64(n) }
        return nil
    }

    /// The number as a `Double` (rounded where it does not fit exactly); nil if this is not a number.
    public var double: Double? {
        if case .number(let n) = self { return Double(n) }
        return nil
    }

    /// The value if this is `true` or `false`; nil for any other type.
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements if this is an array; else nil.
    public var array: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members if this is an object; else nil.
    public var object: [String: JSON]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The JSON type's name, for error messages ("expected a string, got a number").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Why a text is not JSON.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong: `unexpected data after the JSON value`.
    public var message: String
    /// The byte offset in the input where it was found.
    public var offset: Int
    /// `message at byte offset`.
    public var description: String { "\(message) at byte \(offset)" }
}

extension JSON {
    /// Parses one JSON text (surrounding whitespace allowed).
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 64) throws(JSONParseError) -> JSON {
        let array = Array(bytes)
        var p = JSONParser(bytes: array, maxDepth: maxDepth)
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == array.count else { throw p.error("unexpected data after the JSON value") }
        return value
    }

    /// Parses one JSON text from a string's UTF-8; at most `maxDepth` arrays and objects deep.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var i = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSON {
        guard i < bytes.count else { throw error("unexpected end of JSON") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw error("JSON nested deeper than \(maxDepth) levels") }
            i += 1
            var o: [String: JSON] = [:]
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(o)
            }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a key in quotes") }
                let keyStart = i
                let k = try string()
                // A key given twice is refused: readers disagree on which one wins (the last
                // here, the first elsewhere), so `{"action":"status","action":"stop"}` would
                // mean one thing to whoever checked it and another to the bridge.
                guard o[k] == nil else { throw JSONParseError(message: "duplicate key '\(k.prefix(64))'", offset: keyStart) }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipSpace()
                o[k] = try value(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end of JSON") }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(o)
                }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw error("JSON nested deeper than \(maxDepth) levels") }
            i += 1
            var a: [JSON] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(a)
            }
            while true {
                skipSpace()
                a.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end of JSON") }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(a)
                }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw error("unexpected character")
        }
    }

    mutating func literal(_ word: String) throws(JSONParseError) {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count else { throw error("unexpected end of JSON") }
        for k in 0..<w.count where bytes[i + k] != w[k] { throw error("unexpected character") }
        i += w.count
    }

    mutating func number() throws(JSONParseError) -> String {
        let start = i
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number") }
        if bytes[i] == 0x30 {
            i += 1
        } else {
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("invalid \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    mutating func string() throws(JSONParseError) -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
        guard i < bytes.count else { throw error("unterminated string") }
        if bytes[i] == UInt8(ascii: "\"") {
            let s = try validUTF8(bytes[start..<i])
            i += 1
            return s
        }
        var out = Array(bytes[start..<i])
        while true {
            guard i < bytes.count else { throw error("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return try validUTF8(out[...])
            }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { throw error("unterminated string") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 2 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in string")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in string") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("unpaired surrogate in string")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("invalid escape in string")
            }
        }
    }

    func validUTF8(_ slice: ArraySlice<UInt8>) throws(JSONParseError) -> String {
        guard let s = String(validating: slice, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return s
    }
}

/// Writes JSON objects with keys in the order given, compactly, without Foundation.
public struct JSONWriter: Sendable {
    /// What has been written so far, without the closing `}` that ``finish()`` adds.
    public private(set) var text = "{"
    private var first = true

    /// An empty object.
    public init() {}

    private mutating func key(_ k: String) {
        if !first { text.append(",") }
        first = false
        JSONWriter.appendString(k, to: &text)
        text.append(":")
    }

    /// Adds a string member, or `null` for nil.
    public mutating func add(_ k: String, _ v: String?) {
        key(k)
        if let v { JSONWriter.appendString(v, to: &text) } else { text.append("null") }
    }

    /// Adds `true` or `false`.
    public mutating func add(_ k: String, _ v: Bool) {
        key(k)
        text.append(v ? "true" : "false")
    }

    /// Adds a whole number.
    public mutating func add(_ k: String, _ v: Int64) {
        key(k)
        text.append(String(v))
    }

    /// Adds an object of strings, its keys sorted (equal maps give equal text).
    public mutating func add(_ k: String, _ v: [String: String]) {
        key(k)
        text.append("{")
        var firstEntry = true
        for (ek, ev) in v.sorted(by: { $0.key < $1.key }) {
            if !firstEntry { text.append(",") }
            firstEntry = false
            JSONWriter.appendString(ek, to: &text)
            text.append(":")
            JSONWriter.appendString(ev, to: &text)
        }
        text.append("}")
    }

    /// Adds an array of strings, in order.
    public mutating func add(_ k: String, _ v: [String]) {
        key(k)
        text.append("[")
        for (n, e) in v.enumerated() {
            if n > 0 { text.append(",") }
            JSONWriter.appendString(e, to: &text)
        }
        text.append("]")
    }

    /// Adds a value that is already JSON text (a nested object).
    public mutating func addRaw(_ k: String, _ json: String) {
        key(k)
        text.append(json)
    }

    /// The finished object.
    public func finish() -> String { text + "}" }

    /// Appends `s` as a JSON string literal: `"` and `\` escaped, control characters as `\n`, `\r`, `\t` or
    /// `\u00XX`, everything else as it is.
    public static func appendString(_ s: String, to out: inout String) {
        out.append("\"")
        for u in s.unicodeScalars {
            switch u {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out.append("\"")
    }

    /// A JSON string literal for `s`.
    public static func quoted(_ s: String) -> String {
        var out = ""
        appendString(s, to: &out)
        return out
    }
}
