import Foundation

/// A process's memory as Linux reports it in `/proc/<pid>/status`.
public struct ProcessMemory: Sendable, CustomStringConvertible {
    /// Resident set size now, in bytes (`VmRSS`).
    public var resident: Int
    /// The highest resident set size so far, in bytes (`VmHWM`).
    public var peak: Int

    /// Reads `/proc/<pid>/status`; nil if the process is gone.
    public init?(pid: pid_t) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func kB(_ key: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }.map {
                $0 * 1024
            }
        }
        guard let rss = kB("VmRSS"), let hwm = kB("VmHWM") else { return nil }
        resident = rss
        peak = hwm
    }

    public static let mebibyte = 1 << 20

    public var description: String { "VmRSS \(resident / 1024) kB, VmHWM \(peak / 1024) kB" }
}
