/// Exponential backoff between retries: `initial`, doubling, capped at `maximum`, with ±20 % jitter
/// so that bridges restarted together do not retry in step.
public struct Backoff: Sendable {
    /// The first delay, and the next one after ``reset()``.
    public let initial: Duration
    /// The longest delay before jitter (with it, at most 1.2 × this).
    public let maximum: Duration
    private var current: Duration

    /// A backoff; by default 200 ms doubling up to 30 s.
    public init(initial: Duration = .milliseconds(200), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
    }

    /// The next delay to wait.
    public mutating func next() -> Duration {
        let base = current
        current = min(current * 2, maximum)
        let jitter = Double.random(in: 0.8...1.2)
        return base * jitter
    }

    /// After a success: start again from `initial`.
    public mutating func reset() { current = initial }
}
