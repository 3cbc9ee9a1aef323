/// When to try the broker again: `initial` after a lost connection, the wait doubling after
/// each failed attempt up to `maximum`, and back to `initial` once a session was up.
///
/// The rule only: the loop thread asks it how long to wait and what to say in the log, so the
/// schedule the log announces is the one the loop keeps.
struct ReconnectBackoff: Sendable, Hashable {
    let initial: Duration
    let maximum: Duration
    /// The wait before the next attempt.
    private(set) var next: Duration

    init(initial: Duration, maximum: Duration) {
        self.initial = min(initial, maximum)
        self.maximum = maximum
        self.next = self.initial
    }

    /// A session was up: the next loss starts from `initial` again.
    mutating func reset() { next = initial }

    /// The wait before the next attempt; the one after it is twice as long, up to `maximum`.
    mutating func take() -> Duration {
        defer { next = min(next * 2, maximum) }
        return next
    }

    /// The schedule from here, for the log: "in 0.2 s, the wait doubling up to 2 s", or
    /// "every 2 s" once the wait is at its maximum.
    var plan: String {
        next >= maximum
            ? "every \(Self.seconds(maximum))" : "in \(Self.seconds(next)), the wait doubling up to \(Self.seconds(maximum))"
    }

    /// `0.2 s`, `1.6 s`, `2 s`: to the millisecond, without trailing zeros.
    static func seconds(_ d: Duration) -> String {
        let ms = d.wholeMilliseconds
        var text = "\(ms / 1000)"
        if ms % 1000 != 0 {
            var fraction = String(ms % 1000)
            fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + " s"
    }
}
