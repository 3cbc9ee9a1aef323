import Foundation

/// A seeded, deterministic random source for the fuzz generators (SplitMix64).
///
/// Everything the generators draw goes through the helpers below, which use only `next()`,
/// so a seed gives the same cases on every machine and every toolchain (the standard
/// library's `random(in:using:)` does not promise a stable algorithm).
public struct FuzzRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The seed tests use: `IDLEWATCHER_FUZZ_SEED` (decimal or 0x-hex) if set, else `fallback`.
    /// Print it with every failure so that a failing run can be replayed.
    public static func seed(default fallback: UInt64) -> UInt64 {
        guard let text = ProcessInfo.processInfo.environment["IDLEWATCHER_FUZZ_SEED"] else { return fallback }
        if text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) { return v }
        return UInt64(text) ?? fallback
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `range` (the tiny modulo bias does not matter here).
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        let width = UInt64(range.upperBound - range.lowerBound) &+ 1
        if width == 0 { return Int(truncatingIfNeeded: next()) }
        return range.lowerBound + Int(next() % width)
    }

    /// True with probability `percent`/100.
    public mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    /// Picks by weight: `[(3, a), (1, b)]` gives `a` three times as often as `b`.
    public mutating func weighted<T>(_ items: [(Int, T)]) -> T {
        var n = int(0...(items.reduce(0) { $0 + $1.0 } - 1))
        for (w, item) in items {
            if n < w { return item }
            n -= w
        }
        return items[items.count - 1].1
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var v = next()
            for _ in 0..<8 where out.count < count {
                out.append(UInt8(truncatingIfNeeded: v))
                v >>= 8
            }
        }
        return out
    }

    /// A string of `count` characters drawn from `alphabet`.
    public mutating func string(_ count: Int, from alphabet: [Character]) -> String {
        var s = ""
        for _ in 0..<count { s.append(pick(alphabet)) }
        return s
    }

    /// A shuffled copy (Fisher–Yates on our own draws).
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(0...i)) }
        return a
    }
}
