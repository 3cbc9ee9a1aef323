import IdlewatcherCore

/// The retained idle state on `<base>/<runtime>/<id>/idle` (contract v1.1).
enum IdleStatePayload {
    static func encode(_ t: IdleTimer, bridge: String) -> [UInt8] {
        var w = JSONWriter()
        w.add("timeout_s", t.settings.timeout.wholeMilliseconds / 1000)
        w.add("action", t.settings.action.rawValue)
        w.add("last_activity", t.lastActivity.rfc3339)
        w.add("sleeps_at", t.sleepsAt?.rfc3339)
        let holders = t.holders.map { h -> String in
            var o = JSONWriter()
            o.add("holder", h.holder)
            o.add("until", h.until?.rfc3339)
            return o.finish()
        }
        w.addRaw("holders", "[" + holders.joined(separator: ",") + "]")
        w.add("bridge", bridge)
        return Array(w.finish().utf8)
    }

    /// What a restarted bridge takes back from its own retained state.
    struct Restored: Sendable {
        var lastActivity: Timestamp
        /// The leases (unexpired ones are the caller's to choose).
        var leases: [String: IdleTimer.Lease]
        /// It was not running then: `sleeps_at` null with no lease held.
        var wasAsleep: Bool
    }

    /// Nil if the state is not this bridge's, or unreadable.
    static func decode(_ payload: [UInt8], bridge: String) -> Restored? {
        guard let json = try? JSON.parse(payload, maxDepth: 8), json["bridge"]?.string == bridge,
            let last = json["last_activity"]?.string.flatMap(Timestamp.init(rfc3339:))
        else { return nil }
        var leases: [String: IdleTimer.Lease] = [:]
        for h in json["holders"]?.array ?? [] {
            guard let holder = h["holder"]?.string, (1...128).contains(holder.count) else { continue }
            let until = h["until"]?.string.flatMap(Timestamp.init(rfc3339:))
            if h["until"]?.string != nil, until == nil { continue }
            leases[holder] = IdleTimer.Lease(until: until)
        }
        let asleep = json["sleeps_at"].map { $0 == .null } ?? false && leases.isEmpty
        return Restored(lastActivity: last, leases: leases, wasAsleep: asleep)
    }
}
