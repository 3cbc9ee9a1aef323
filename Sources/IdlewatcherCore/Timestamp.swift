#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A point in time with nanosecond resolution, printed as RFC 3339 in UTC.
///
/// Kept as a plain integer so that events carry Docker's `timeNano` unchanged and printing
/// needs no formatter objects on the hot path.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public var nanoseconds: Int64

    /// `nanoseconds` after the epoch (Docker's `timeNano`).
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// `seconds` after the epoch, on the whole second.
    public init(seconds: Int64) { self.nanoseconds = seconds * 1_000_000_000 }

    /// The current wall-clock time.
    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    /// Earlier first.
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }

    /// Whole seconds since the epoch (rounded down).
    public var seconds: Int64 { nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000 }

    /// RFC 3339 in UTC with microseconds: `2026-11-26T21:55:00.123456Z`.
    public var rfc3339: String {
        let secs = seconds
        let micros = Int((nanoseconds - secs * 1_000_000_000) / 1000)
        var days = secs / 86_400
        var rem = secs - days * 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = Self.civil(fromDays: days)
        let hh = Int(rem / 3600), mm = Int(rem / 60 % 60), ss = Int(rem % 60)
        var out = ""
        out.reserveCapacity(27)
        Self.append(y, width: 4, to: &out)
        out.append("-")
        Self.append(m, width: 2, to: &out)
        out.append("-")
        Self.append(d, width: 2, to: &out)
        out.append("T")
        Self.append(hh, width: 2, to: &out)
        out.append(":")
        Self.append(mm, width: 2, to: &out)
        out.append(":")
        Self.append(ss, width: 2, to: &out)
        out.append(".")
        Self.append(micros, width: 6, to: &out)
        out.append("Z")
        return out
    }

    /// ``rfc3339``.
    public var description: String { rfc3339 }

    /// Parses RFC 3339 as this bridge writes it and as people do: `2026-12-02T10:00:00Z`,
    /// with up to nine fractional digits, `Z` or a `±hh:mm` offset. Nil for anything else.
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var n: Int64 = 0
            for k in from..<(from + count) {
                guard b[k] >= 48, b[k] <= 57 else { return nil }
                n = n * 10 + Int64(b[k] - 48)
            }
            return n
        }
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
            let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let se = num(17, 2),
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61
        else { return nil }
        var i = 19
        var nanos: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 9 { nanos = nanos * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            var scale = digits
            while scale < 9 {
                nanos *= 10
                scale += 1
            }
        }
        var offset: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = num(i + 1, 2), i + 3 < b.count,
            b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2)
        {
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = Self.days(fromCivil: y, Int64(mo), Int64(d))
        let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset
        self.init(nanoseconds: secs * 1_000_000_000 + nanos)
    }

    // Howard Hinnant's days-from-civil algorithm.
    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func append(_ value: Int, width: Int, to out: inout String) {
        let digits = String(value)
        if digits.count < width { out.append(String(repeating: "0", count: width - digits.count)) }
        out.append(digits)
    }

    // Howard Hinnant's days-to-civil algorithm.
    private static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }
}
