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

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public init(seconds: Int64) { self.nanoseconds = seconds * 1_000_000_000 }

    /// The current wall-clock time.
    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

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

    public var description: String { rfc3339 }

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
