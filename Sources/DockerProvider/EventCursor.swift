import IdlewatcherCore

/// Where the event stream stands, so that a reconnect asks for `since=` the last event and
/// skips the ones it already handed on (Docker's `since` is inclusive).
struct EventCursor {
    private var lastNanos: Int64?
    private var seenAtLast: Set<String> = []

    var since: String? {
        guard let n = lastNanos else { return nil }
        let s = n / 1_000_000_000
        let frac = String(n % 1_000_000_000)
        return "\(s)." + frac.leftPadded(to: 9)
    }

    /// The stream opened before any event was seen: a later reconnect asks for what happened
    /// since now (else the events of an outage before the first event would be lost).
    mutating func opened(at nanos: Int64) {
        if lastNanos == nil { lastNanos = nanos }
    }

    /// False for an event already seen.
    mutating func accept(_ json: JSON) -> Bool {
        guard let n = json["timeNano"]?.int64 else { return true }
        let key = (json["Actor"]?["ID"]?.string ?? "") + "|" + (json["Action"]?.string ?? "")
        if let last = lastNanos {
            // Under load Docker's stream is not in timeNano order; a replay after `since=` never
            // goes below the cursor, so an older event here is a live one not seen yet.
            if n < last { return true }
            if n == last {
                return seenAtLast.insert(key).inserted
            }
        }
        lastNanos = n
        seenAtLast = [key]
        return true
    }
}
