import ConfigReader
import IdlePolicy
import IdlewatcherCore
import YAML

extension Validator {
    /// `idle:` (contract v1.1, "Idle policy"): defaults, and per container by `<runtime>/<id>`.
    mutating func idleSection(
        _ node: YAMLNode?, defaults: Configuration.Defaults, endpoints: [RuntimeEndpoint]
    ) -> IdleConfiguration {
        let m = r.mapping(
            node, "idle", allowed: ["timeout", "action", "wake_timeout", "traffic_threshold", "traffic_interval", "containers"])
        var out = IdleConfiguration()
        if let d = r.duration(m["timeout"], "idle.timeout") { out.timeout = d }
        if let a = idleAction(m["action"], "idle.action") { out.action = a }
        if let d = wakeTimeout(m["wake_timeout"], "idle.wake_timeout") { out.wakeTimeout = d }
        if let t = byteSize(m["traffic_threshold"], "idle.traffic_threshold") { out.trafficThreshold = t }
        if let d = r.duration(m["traffic_interval"], "idle.traffic_interval") {
            if d < .seconds(1) { r.problem("idle.traffic_interval", "must be at least 1s") } else { out.trafficInterval = d }
        }
        let allowed = Set(defaults.allow)
        if out.timeout > .zero, !allowed.contains(out.action.action) {
            r.problem(
                "idle.action", "\(out.action.rawValue) is not in defaults.allow: idle containers would never be put to sleep")
        }
        let runtimes = Set(runtimeModules.map { $0.section })
        var entries: [YAMLMapping.Entry] = []
        if let c = m["containers"] {
            if let map = c.mapping {
                entries = map.entries
            } else if let text = c.text, text.isEmpty || text == "~" || text == "null" {
                entries = []
            } else {
                r.problem(
                    "idle.containers", "must be a mapping of <runtime>/<id> to settings, like docker/jellyfin: {timeout: 30m}")
            }
        }
        for entry in entries {
            let key = entry.key.text
            let path = "idle.containers.\(key)"
            guard let ref = ContainerRef(parsing: key), runtimes.contains(ref.runtime.rawValue) else {
                r.problem(
                    path,
                    "must be <runtime>/<id> with a runtime of \(runtimes.sorted().joined(separator: ", ")), like docker/jellyfin")
                continue
            }
            let c = r.mapping(
                entry.value, path, allowed: ["timeout", "action", "wake_timeout", "depends_on", "traffic_threshold"])
            var o = IdleConfiguration.Override()
            o.timeout = r.duration(c["timeout"], "\(path).timeout")
            o.action = idleAction(c["action"], "\(path).action")
            o.wakeTimeout = wakeTimeout(c["wake_timeout"], "\(path).wake_timeout")
            o.trafficThreshold = byteSize(c["traffic_threshold"], "\(path).traffic_threshold")
            if c["depends_on"] != nil {
                var deps: [ContainerRef] = []
                for (i, d) in r.stringList(c["depends_on"], "\(path).depends_on").enumerated() {
                    if let dep = ContainerRef(parsing: d) {
                        deps.append(dep)
                    } else {
                        r.problem("\(path).depends_on[\(i)]", "must be <runtime>/<id>, like proxmox/105, got '\(d)'")
                    }
                }
                o.dependsOn = deps
            }
            if let a = o.action, (o.timeout ?? out.timeout) > .zero, !allowed.contains(a.action) {
                r.problem("\(path).action", "\(a.rawValue) is not in defaults.allow: \(ref) would never be put to sleep")
            }
            out.containers[ref] = o
        }
        var graph: [ContainerRef: [ContainerRef]] = [:]
        for (ref, o) in out.containers {
            if let deps = o.dependsOn { graph[ref] = deps }
        }
        for cycle in Self.cycles(graph) {
            r.problem(
                "idle.containers.\(cycle[0]).depends_on",
                "dependency cycle \((cycle + [cycle[0]]).map(\.description).joined(separator: " → ")): a container cannot wait for itself"
            )
        }
        return out
    }

    private mutating func idleAction(_ node: YAMLNode?, _ path: String) -> IdleAction? {
        guard let text = r.string(node, path) else { return nil }
        guard let a = IdleAction(rawValue: text.lowercased()) else {
            r.problem(path, "must be stop, pause or kill, got '\(text)'")
            return nil
        }
        return a
    }

    private mutating func wakeTimeout(_ node: YAMLNode?, _ path: String) -> Duration? {
        guard let d = r.duration(node, path) else { return nil }
        guard d >= .seconds(1), d <= .seconds(86_400) else {
            r.problem(path, "must be from 1s to 24h")
            return nil
        }
        return d
    }

    private mutating func byteSize(_ node: YAMLNode?, _ path: String) -> UInt64? {
        guard let text = r.string(node, path) else { return nil }
        guard let n = ByteSize.parse(text) else {
            r.problem(path, "must be bytes per minute, a whole number with an optional unit like 500KB or 1MB, got '\(text)'")
            return nil
        }
        return n
    }

    /// The cycles of a dependency graph, each once, starting at its smallest member.
    static func cycles(_ graph: [ContainerRef: [ContainerRef]]) -> [[ContainerRef]] {
        var found: Set<[ContainerRef]> = []
        func walk(_ path: [ContainerRef]) {
            for next in graph[path.last!] ?? [] {
                if let i = path.firstIndex(of: next) {
                    let cycle = Array(path[i...])
                    let start = cycle.firstIndex(of: cycle.min()!)!
                    found.insert(Array(cycle[start...] + cycle[..<start]))
                } else {
                    walk(path + [next])
                }
            }
        }
        for node in graph.keys.sorted() { walk([node]) }
        return found.sorted { $0.map(\.description).joined() < $1.map(\.description).joined() }
    }
}
