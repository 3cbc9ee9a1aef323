extension String {
    /// The text on one line, safe to print: control characters, line and paragraph separators
    /// and bidirectional overrides written as escapes (`\n`, `\u{1B}`, `\u{202E}`), and, past
    /// `limit` characters, cut with `…`.
    ///
    /// For text that comes from outside (command payloads, request ids, configuration values)
    /// on its way into a log line or a `path: problem` line: a `\n` in a request id must not
    /// start a forged log line, an ANSI escape must not repaint the terminal, and U+202E must
    /// not reorder what an operator reads.
    public func oneLine(limit: Int? = nil) -> String {
        if limit.map({ unicodeScalars.count <= $0 }) ?? true, !unicodeScalars.contains(where: Self.needsEscape) { return self }
        var out = ""
        var count = 0
        for u in unicodeScalars {
            if let limit, count == limit {
                out += "…"
                break
            }
            count += 1
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Self.needsEscape(u) {
                    out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    private static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
