extension Duration {
    /// Parses the contract's duration strings: `500ms`, `10s`, `2m`, `1h`, `1h30m`, `0s`.
    ///
    /// Units: `ms`, `s`, `m`, `h`. A bare number is not accepted: `10` could mean anything.
    public init?(parsing text: String) {
        let s = Array(text.trimmingWhitespace().utf8)
        guard !s.isEmpty else { return nil }
        var i = 0
        var total: Int64 = 0  // milliseconds
        while i < s.count {
            var n: Int64 = 0
            let start = i
            while i < s.count, s[i] >= 48, s[i] <= 57 {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(s[i] - 48))
                guard !o1, !o2 else { return nil }
                n = a
                i += 1
            }
            guard i > start, i < s.count else { return nil }
            let unitMillis: Int64
            if s[i] == UInt8(ascii: "m"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "s") {
                unitMillis = 1
                i += 2
            } else if s[i] == UInt8(ascii: "s") {
                unitMillis = 1000
                i += 1
            } else if s[i] == UInt8(ascii: "m") {
                unitMillis = 60_000
                i += 1
            } else if s[i] == UInt8(ascii: "h") {
                unitMillis = 3_600_000
                i += 1
            } else if s[i] == UInt8(ascii: "d") {
                unitMillis = 86_400_000
                i += 1
            } else {
                return nil
            }
            let (p, o3) = n.multipliedReportingOverflow(by: unitMillis)
            let (t, o4) = total.addingReportingOverflow(p)
            guard !o3, !o4 else { return nil }
            total = t
        }
        self = .milliseconds(total)
    }

    /// Whole milliseconds (rounded down).
    public var wholeMilliseconds: Int64 {
        let (s, a) = components
        return s * 1000 + a / 1_000_000_000_000_000
    }

    /// Whole seconds, rounded up (an API that takes seconds must not get less than asked for).
    public var wholeSecondsRoundedUp: Int64 {
        let (s, a) = components
        return a > 0 ? s + 1 : s
    }
}
