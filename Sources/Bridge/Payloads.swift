import IdlewatcherCore

/// The JSON documents of the contract: event, status and reply.
enum Payloads {
    static func event(
        _ e: LifecycleEvent, runtime: RuntimeKind, type: String?, status: ContainerStatus, bridge: String
    ) -> [UInt8] {
        var w = JSONWriter()
        w.add("runtime", runtime.rawValue)
        w.add("id", e.id)
        if let type = e.type ?? type { w.add("type", type) }
        if let name = e.name { w.add("name", name) }
        if let ref = e.ref { w.add("ref", ref) }
        w.add("action", e.action)
        w.add("status", status.rawValue)
        w.add("time", e.time.rfc3339)
        w.add("bridge", bridge)
        w.add("attributes", e.attributes)
        return Array(w.finish().utf8)
    }

    static func status(
        _ status: ContainerStatus, runtime: RuntimeKind, id: String, name: String?, type: String?, since: Timestamp,
        updated: Timestamp, health: Health, reachable: Bool = true, bridge: String
    ) -> [UInt8] {
        var w = JSONWriter()
        w.add("status", status.rawValue)
        w.add("runtime", runtime.rawValue)
        w.add("id", id)
        if let type { w.add("type", type) }
        if let name { w.add("name", name) }
        w.add("since", since.rfc3339)
        w.add("updated", updated.rfc3339)
        w.add("health", health.rawValue)
        if !reachable { w.add("reachable", false) }
        w.add("bridge", bridge)
        return Array(w.finish().utf8)
    }

    static func reply(_ r: Reply, bridge: String) -> [UInt8] {
        var w = JSONWriter()
        w.add("request_id", r.requestID)
        w.add("runtime", r.runtime.rawValue)
        w.add("id", r.id)
        w.add("action", r.action)
        w.add("ok", r.ok)
        w.add("status", r.status?.rawValue)
        if let ready = r.ready { w.add("ready", ready) }
        if let duration = r.duration { w.add("duration_ms", duration.wholeMilliseconds) }
        if let error = r.error {
            var e = JSONWriter()
            e.add("code", error.code.rawValue)
            e.add("message", error.message)
            w.addRaw("error", e.finish())
        }
        w.add("bridge", bridge)
        return Array(w.finish().utf8)
    }
}
