import IdlewatcherCore

/// What a message on `<base>/<runtime>/<id>/activity` says (contract v1.1, "Idle policy").
public enum ActivityMessage: Sendable, Hashable {
    /// Restart the timer.
    case touch
    /// Hold the container awake until released or, with a ttl, until it ends (a touch too).
    case lease(holder: String, ttl: Duration?)
    /// Let go of a lease (a touch too).
    case release(holder: String)

    /// The largest payload accepted, in bytes.
    public static let maxPayload = 4096

    /// Empty, or text that does not start with `{`: a touch. A JSON object: a lease or a
    /// release. Anything else: what is wrong with it, for the log.
    public static func parse(_ payload: [UInt8]) -> Result<ActivityMessage, BridgeError> {
        func bad(_ m: String) -> Result<ActivityMessage, BridgeError> { .failure(BridgeError(.badRequest, m)) }
        guard payload.count <= maxPayload else { return bad("\(payload.count) bytes; at most \(maxPayload) are accepted") }
        guard let text = String(validating: payload, as: UTF8.self) else { return bad("not valid UTF-8 text") }
        let trimmed = text.trimmingWhitespace()
        guard trimmed.hasPrefix("{") else { return .success(.touch) }
        let object: [String: JSON]
        do {
            guard let o = try JSON.parse(trimmed, maxDepth: 4).object else { return bad("not a JSON object") }
            object = o
        } catch {
            return bad("not valid JSON: \(error)")
        }
        if let unknown = object.keys.sorted().first(where: { !["holder", "ttl", "release"].contains($0) }) {
            return bad("unknown key '\(unknown.prefix(64))'; a lease has holder, ttl and release")
        }
        guard let holder = object["holder"]?.string else { return bad("holder: a string of 1 to 128 characters is required") }
        guard (1...128).contains(holder.count) else { return bad("holder: 1 to 128 characters, got \(holder.count)") }
        var release = false
        if let r = object["release"] {
            guard let b = r.bool else { return bad("release: true or false") }
            release = b
        }
        var ttl: Duration? = nil
        if let t = object["ttl"] {
            guard let s = t.string, let d = Duration(parsing: s), d >= .seconds(1), d <= .seconds(7 * 86_400) else {
                return bad("ttl: a duration from 1s to 7d such as \"3h\"")
            }
            ttl = d
        }
        if release {
            if ttl != nil { return bad("ttl does not go with release") }
            return .success(.release(holder: holder))
        }
        return .success(.lease(holder: holder, ttl: ttl))
    }
}
