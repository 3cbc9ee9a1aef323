import HTTPClient
import IdlewatcherCore
import Logging
import Synchronization

/// One Docker engine (or another Engine API, by its ``EngineFlavor``) as a
/// ``ContainerRuntime``: lists containers, hands out providers, and follows one
/// `GET /events` stream for all of them.
public final class DockerRuntime: ContainerRuntime {
    /// Which Engine API this is (Docker's, Podman's), with its words and quirks.
    public let flavor: EngineFlavor
    /// The flavor's description.
    public var runtime: RuntimeDescription { flavor.description }
    /// The engine's URL as configured.
    public var endpoint: String { configuration.url }
    /// 200 ms doubling up to 15 s.
    public let reconnectBackoff = Backoff(initial: .milliseconds(200), maximum: .seconds(15))
    /// The configured `id_prefix`, or "".
    public var idPrefix: String { configuration.idPrefix }
    let configuration: DockerEndpointConfiguration
    let api: DockerAPI
    let logger: Logger
    private let labelCache = Mutex<[String: [String: String]]>([:])  // full container id → labels
    /// Where the event stream stood when the last connection ended: the next one asks `since=` it.
    private let followCursor = Mutex(EventCursor())
    /// The container the bridge itself runs in (if any): only `status` is allowed on it.
    let own: OwnContainer?

    /// - Parameter ownContainer: the container this process runs in, if any; on Docker itself
    ///   only (pass nil for another engine, which does not run this process).
    public init(
        configuration: DockerEndpointConfiguration, flavor: EngineFlavor = .docker, logger: Logger,
        ownContainer: OwnContainer? = OwnContainer.detect()
    ) throws {
        self.configuration = configuration
        self.flavor = flavor
        let http = try HTTPClient(configuration: configuration.httpConfiguration().get())
        var logger = logger
        logger[metadataKey: "runtime"] = "\(flavor.description.kind)"
        self.logger = logger
        self.api = DockerAPI(configuration: configuration, flavor: flavor, http: http, logger: logger)
        self.own = ownContainer
    }

    /// The labels the bridge goes by: Docker's, except that the bridge's own container is
    /// narrowed to `status` (`idlewatcher.allow=status`, which no label can widen again).
    func effectiveLabels(ref: String, _ labels: [String: String]) -> [String: String] {
        guard let own, own.matches(ref) else { return labels }
        var l = labels
        l["idlewatcher.allow"] = "status"
        return l
    }

    static func status(fromState state: String) -> ContainerStatus {
        switch state {
        case "running": .running
        case "paused": .paused
        default: .stopped  // created, exited, dead, removing, restarting
        }
    }

    /// Every container of the engine, stopped ones too (`/containers/json?all=1`), with labels, image and,
    /// where the flavor lists it, health.
    public func containers() async throws -> [ContainerInfo] {
        let r = try await api.request("GET", "/containers/json?all=1")
        guard r.status == 200 else {
            throw BridgeError(
                .runtimeError, "\(api.name) at \(configuration.url) refused to list containers: \(DockerAPI.message(of: r))")
        }
        guard let list = try? JSON.parse(r.body, maxDepth: 32).array else {
            throw BridgeError(.runtimeError, "\(api.name) at \(configuration.url) sent an unreadable container list")
        }
        var out: [ContainerInfo] = []
        out.reserveCapacity(list.count)
        var cache: [String: [String: String]] = [:]
        for c in list {
            guard let ref = c["Id"]?.string, let names = c["Names"]?.array, let first = names.first?.string else { continue }
            let name = first.hasPrefix("/") ? String(first.dropFirst()) : first
            var labels: [String: String] = [:]
            for (k, v) in c["Labels"]?.object ?? [:] { labels[k] = v.string ?? "" }
            labels = effectiveLabels(ref: ref, labels)
            if own?.matches(ref) == true, !labelCache.withLock({ $0[ref] != nil }) {
                logger.info("\(name) is the container this bridge runs in: only status is allowed on it")
            }
            cache[ref] = labels
            out.append(
                ContainerInfo(
                    id: configuration.idPrefix + name, name: name, ref: ref,
                    status: Self.status(fromState: c["State"]?.string ?? ""), labels: labels,
                    model: c["Image"]?.string,
                    health: !flavor.listsHealth
                        ? nil : c["State"]?.string == "running" ? Health(statusLine: c["Status"]?.string ?? "") : Health.none))
        }
        labelCache.withLock { $0 = cache }
        return out
    }

    /// The container named `id` without the prefix; no I/O.
    public func provider(for id: String) -> any Provider {
        let prefix = configuration.idPrefix.utf8  // bytes, not characters, as the bridge matches namespaces
        let name = id.utf8.starts(with: prefix) ? String(decoding: id.utf8.dropFirst(prefix.count), as: UTF8.self) : id
        return DockerContainer(id: id, name: name, api: api)
    }

    /// Fails the requests in flight (the event stream among them) and stops the HTTP client.
    public func close() async { api.http.shutdown() }

    /// How many stats reads are in flight at once.
    static let statsReadsInFlight = 32

    /// One `stats?stream=false&one-shot=true` read per container: `rx_bytes + tx_bytes` over its
    /// networks. A container without a network (or not running) is left out.
    ///
    /// Docker answers a stats read at its collector's next tick, about a second later even with
    /// `one-shot`, so the reads run side by side (``statsReadsInFlight`` at a time): read one
    /// after another, 30 containers would take 30 s.
    public func networkBytes(of ids: [String]) async throws -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        await withTaskGroup(of: (String, UInt64?).self) { group in
            var next = ids.makeIterator()
            func addNext() -> Bool {
                guard let id = next.next() else { return false }
                group.addTask { (id, await self.networkBytes(of: id)) }
                return true
            }
            for _ in 0..<Self.statsReadsInFlight where !addNext() { break }
            while let (id, bytes) = await group.next() {
                if let bytes { out[id] = bytes }
                _ = addNext()
            }
        }
        return out
    }

    private func networkBytes(of id: String) async -> UInt64? {
        guard let c = provider(for: id) as? DockerContainer,
            let r = try? await api.request(
                "GET", "/containers/\(FormEncoding.percentEncode(c.name))/stats?stream=false&one-shot=true"),
            r.status == 200, let json = try? JSON.parse(r.body, maxDepth: 16), let networks = json["networks"]?.object
        else { return nil }
        var total: UInt64 = 0
        for (_, n) in networks {
            total &+= UInt64(max(0, n["rx_bytes"]?.int64 ?? 0)) &+ UInt64(max(0, n["tx_bytes"]?.int64 ?? 0))
        }
        return total
    }

    // MARK: events

    /// Negotiates the API version, hands on the events missed since the last connection (if any), then
    /// `.resync` once `/events` answers, then each event as it comes, until the connection ends.
    public func follow(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async throws {
        api.forgetVersion()
        try await api.negotiate()
        var cursor = followCursor.withLock { $0 }
        defer { followCursor.withLock { [cursor] in $0 = cursor } }
        let filters = #"{"type":["container"]}"#
        if let since = cursor.since {
            // Back after a loss: the events missed meanwhile go out first, in the order they
            // happened, and only then the resync's statuses (which then agree with them, with
            // their true `since`). The live stream below skips what this already handed on.
            for json in await missedEvents(filters: filters, since: since) where cursor.accept(json) {
                if let e = await lifecycleEvent(from: json) { await handler(.event(e)) }
            }
        }
        try await follow(filters: filters, cursor: &cursor) { [self] in
            logger.info("following \(api.name) events at \(configuration.url)")
            await handler(.resync)
        } onEvent: { [self] event in
            if let e = await lifecycleEvent(from: event) { await handler(.event(e)) }
        }
    }

    /// The events from `since` until now, in one finite request (`until=`); nothing if the
    /// engine does not answer within 5 s (its clock may be behind ours: the live stream then
    /// replays them after the resync instead).
    private func missedEvents(filters: String, since: String) async -> [JSON] {
        let now = Timestamp.now().nanoseconds
        let until = "\(now / 1_000_000_000).\(String(now % 1_000_000_000).leftPadded(to: 9))"
        let query = "filters=" + FormEncoding.percentEncode(filters) + "&since=" + since + "&until=" + until
        do {
            let r = try await api.request("GET", "/events?" + query, timeout: .seconds(5))
            guard r.status == 200 else { return [] }
            return r.body.split(separator: UInt8(ascii: "\n")).compactMap { try? JSON.parse($0, maxDepth: 16) }
        } catch {
            logger.debug("cannot read the events missed since \(since): \(BridgeError.wrapping(error).message)")
            return []
        }
    }

    /// Streams `/events` with `since=` the last event seen, parsing one JSON object per line.
    private func follow(
        filters: String, cursor: inout EventCursor, onOpen: () async -> Void, onEvent: (JSON) async -> Void
    ) async throws {
        let v = try await api.apiVersion()
        var query = "filters=" + FormEncoding.percentEncode(filters)
        if let since = cursor.since { query += "&since=" + since }
        let stream = api.http.stream(HTTPRequest(method: "GET", path: "/v\(v)/events?" + query, timeout: nil))
        var buffer: [UInt8] = []
        do {
            for try await part in stream {
                switch part {
                case .head(let head):
                    guard head.status == 200 else {
                        throw BridgeError(
                            .unavailable, "\(api.name) at \(configuration.url) refused the event stream: HTTP \(head.status)")
                    }
                    cursor.opened(at: Timestamp.now().nanoseconds)
                    await onOpen()
                case .body(let bytes):
                    buffer.append(contentsOf: bytes)
                    while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = buffer[..<nl]
                        defer { buffer.removeSubrange(...nl) }
                        guard !line.isEmpty, let json = try? JSON.parse(line, maxDepth: 16) else { continue }
                        if cursor.accept(json) { await onEvent(json) }
                    }
                }
            }
        } catch let e as HTTPError {
            throw api.mapTransport(e)
        }
    }

    /// The container's labels: from the last listing, or read now for a container created since.
    private func labels(ofContainer ref: String) async -> [String: String]? {
        if let l = labelCache.withLock({ $0[ref] }) { return l }
        guard let r = try? await api.request("GET", "/containers/\(ref)/json"), r.status == 200,
            let json = try? JSON.parse(r.body)
        else { return nil }
        var labels: [String: String] = [:]
        for (k, v) in json["Config"]?["Labels"]?.object ?? [:] { labels[k] = v.string ?? "" }
        labels = effectiveLabels(ref: ref, labels)
        labelCache.withLock { $0[ref] = labels }
        return labels
    }

    func lifecycleEvent(from json: JSON) async -> LifecycleEvent? {
        guard json["Type"]?.string == "container", var action = json["Action"]?.string,
            let actor = json["Actor"], let ref = actor["ID"]?.string
        else { return nil }
        var attributes: [String: String] = [:]
        for (k, v) in actor["Attributes"]?.object ?? [:] { attributes[k] = v.string ?? "" }
        if let colon = action.firstIndex(of: ":") {
            // "health_status: healthy" → action health_status, attribute health_status=healthy.
            let detail = String(action[action.index(after: colon)...]).trimmingWhitespace()
            action = String(action[..<colon])
            if action == "health_status" { attributes["health_status"] = detail }
        } else if action == "health_status", let value = json["HealthStatus"]?.string {
            attributes["health_status"] = value  // Podman: the value beside the action
        }
        guard let kind = flavor.eventKinds[action], let name = attributes["name"] else { return nil }
        let labels: [String: String]?
        if kind == .created {
            // A create event carries all the container's labels beside `image` and `name`: no inspect,
            // which waits for the container's lock while Docker starts it (seconds in a burst).
            var l = attributes
            l.removeValue(forKey: "image")
            l.removeValue(forKey: "name")
            l = effectiveLabels(ref: ref, l)
            labelCache.withLock { $0[ref] = l }
            labels = l
        } else {
            labels = await self.labels(ofContainer: ref)
        }
        for key in (labels ?? [:]).keys { attributes.removeValue(forKey: key) }
        if kind == .destroyed { labelCache.withLock { _ = $0.removeValue(forKey: ref) } }
        let nanos = json["timeNano"]?.int64 ?? (json["time"]?.int64).map { $0 * 1_000_000_000 } ?? Timestamp.now().nanoseconds
        let status = kind.engineStatus
        var previous: String? = nil
        if kind == .renamed, let old = attributes["oldName"] {
            previous = configuration.idPrefix + (old.hasPrefix("/") ? String(old.dropFirst()) : old)
        }
        return LifecycleEvent(
            id: configuration.idPrefix + name, name: name, ref: ref, kind: kind, action: kind.engineAction ?? action,
            status: status,
            time: Timestamp(nanoseconds: nanos), attributes: attributes, previousID: previous, labels: labels,
            health: kind == .health ? Health(engineWord: attributes["health_status"] ?? "") : nil)
    }
}

extension DockerRuntime {
    /// Logs the loss as a warning the first time, each failed retry at debug level.
    public func connectionLost(_ error: BridgeError, first: Bool) {
        if first {
            logger.warning("lost \(api.name) events at \(configuration.url): \(error.message); retrying with backoff")
        } else {
            logger.debug("\(api.name) at \(configuration.url) still unreachable: \(error.message)")
        }
    }
}

extension String {
    /// With leading zeros up to `width` characters.
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
