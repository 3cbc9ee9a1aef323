/// A POSIX signal as a command names it: `SIGTERM`, `TERM` or a number 1–64.
public struct Signal: Sendable, Hashable, CustomStringConvertible {
    /// The signal number (1–64).
    public let number: Int32

    /// The signal with this number; nil outside 1–64.
    public init?(number: Int) {
        guard (1...64).contains(number) else { return nil }
        self.number = Int32(number)
    }

    /// Parses `SIGTERM`, `term`, `15`. Returns nil for anything else (`SIGFOO`, `0`, `65`).
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        if let n = Int(trimmed) {
            self.init(number: n)
            return
        }
        var name = trimmed.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        guard let n = Self.numbers[name] else { return nil }
        self.init(number: Int(n))
    }

    /// `SIGKILL`, or `SIG42` where the number has no common name.
    public var name: String {
        if let entry = Self.numbers.first(where: { $0.value == number }) { return "SIG" + entry.key }
        return "SIG\(number)"
    }

    /// ``name``.
    public var description: String { name }

    /// `SIGHUP` (1).
    public static let hup = Signal(number: 1)!
    /// `SIGINT` (2).
    public static let interrupt = Signal(number: 2)!
    /// `SIGKILL` (9): cannot be caught.
    public static let kill = Signal(number: 9)!
    /// `SIGTERM` (15).
    public static let term = Signal(number: 15)!

    // Linux numbering (the runtimes this bridge drives are Linux).
    static let numbers: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
        "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
        "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
        "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
        "PWR": 30, "SYS": 31,
    ]
}
