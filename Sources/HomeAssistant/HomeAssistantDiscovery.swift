import Bridge
import IdlewatcherCore
import Logging
import MQTTClient
import Synchronization

/// Home Assistant MQTT discovery: one device per exposed container (via the bridge's own
/// device) with a switch (on = wake, off = stop), a status sensor and buttons for pause,
/// unpause, restart and kill — each only where the container allows the action.
///
/// Configs are retained under `<prefix>/<component>/idlewatcher_<bridge_id>/<object_id>/config`,
/// published again when Home Assistant says `online` and after every reconnect. A container
/// that is removed keeps its entities for `removeAfter` (compose recreates containers under
/// the same name); after that its configs are deleted with empty retained payloads.
/// A ``BridgeExtension``: it sees the bridge only through its context.
public final class HomeAssistantDiscovery: BridgeExtension {
    /// Home Assistant's discovery prefix (`homeassistant.prefix`).
    public let prefix: String
    /// How long a removed container keeps its entities.
    public let removeAfter: Duration
    /// The bridge's version: the `sw_version` of the bridge's device and of every config's origin.
    public let version: String
    /// `bridge.id`: names the bridge's device and the configs' node id.
    public let bridgeID: String
    /// `homeassistant`, for log lines.
    public let name = "homeassistant"

    private struct State {
        /// Config topics published, by container key (`<runtime>/<id>`), and their payloads.
        var published: [String: [String: [UInt8]]] = [:]
        /// Containers gone, and when their entities go.
        var pendingRemoval: [String: ContinuousClock.Instant] = [:]
        /// The last snapshot of every exposed container, by key.
        var containers: [String: ContainerSnapshot] = [:]
        /// Containers with a retained idle state (idle-managed): they get the idle entities.
        var idleManaged: Set<String> = []
    }
    private let state = Mutex(State())

    /// The bridge's base topic (its idle states are read from `<base>/+/+/idle`).
    public let baseTopic: String

    /// Discovery for the bridge `bridgeID` under `prefix`; nothing is published until the bridge runs it.
    public init(prefix: String, removeAfter: Duration, version: String, bridgeID: String, baseTopic: String = "idlewatcher") {
        self.baseTopic = baseTopic
        self.prefix = prefix
        self.removeAfter = removeAfter
        self.version = version
        self.bridgeID = bridgeID
    }

    private var nodeID: String { "idlewatcher_" + Self.sanitize(bridgeID) }

    // MARK: BridgeExtension

    /// Home Assistant's `<prefix>/status` (`online` after it restarts), this bridge's retained configs
    /// (to remove stale ones), and the idle states (to add the idle entities).
    public var subscriptions: [MQTTSubscription] {
        [
            MQTTSubscription(filter: "\(prefix)/status", retainHandling: .send),
            MQTTSubscription(filter: "\(prefix)/+/\(nodeID)/+/config", retainHandling: .send),
            MQTTSubscription(filter: "\(baseTopic)/+/+/idle", retainHandling: .send),
        ]
    }

    /// Publishes and removes configs as the bridge's containers change, until cancelled.
    public func run(_ context: ExtensionContext) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await message in context.messages {
                    if Task.isCancelled { break }  // a stream that never runs dry must not outlive a shutdown
                    await self.handle(message, context)
                }
            }
            group.addTask {
                for await change in context.changes {
                    if Task.isCancelled { break }
                    await self.apply(change, context)
                }
            }
            group.addTask {
                let tick = min(max(self.removeAfter / 4, .milliseconds(100)), .seconds(30))
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    self.removeExpired(context)
                }
            }
        }
    }

    private func handle(_ message: MQTTIncomingMessage, _ context: ExtensionContext) async {
        if message.topic == "\(prefix)/status" {
            if String(decoding: message.payload, as: UTF8.self).trimmingWhitespace().lowercased() == "online" {
                context.logger.info("Home Assistant is online: publishing discovery and statuses again")
                await republishAll(context, withStatuses: true)
            }
            return
        }
        if let (kind, id, leaf) = context.topics.parse(message.topic), leaf == "idle" {
            noteIdleState("\(kind)/\(id)", managed: !message.payload.isEmpty, context)
            return
        }
        noteRetainedConfig(message.topic, empty: message.payload.isEmpty, context)
    }

    /// An idle state appeared (or was cleared): the container's device gains (or loses) the
    /// "Sleeps at", "Keep awake" and "Activity" entities.
    private func noteIdleState(_ key: String, managed: Bool, _ context: ExtensionContext) {
        let snapshot = state.withLock { s -> ContainerSnapshot? in
            let changed = managed ? s.idleManaged.insert(key).inserted : s.idleManaged.remove(key) != nil
            return changed ? s.containers[key] : nil
        }
        if let c = snapshot { publish(key: key, configs: discoveryConfigs(c, topics: context.topics), force: false, context) }
    }

    private func apply(_ change: BridgeChange, _ context: ExtensionContext) async {
        switch change {
        case .status(let c):
            state.withLock { $0.containers["\(c.runtime.kind)/\(c.id)"] = c }
            publish(key: "\(c.runtime.kind)/\(c.id)", configs: discoveryConfigs(c, topics: context.topics), force: false, context)
        case .removed(let kind, let id):
            let key = "\(kind)/\(id)"
            state.withLock { s in
                s.containers.removeValue(forKey: key)
                if s.published[key] != nil { s.pendingRemoval[key] = .now + removeAfter }
            }
        case .brokerConnected:
            await republishAll(context)
        case .answered:
            break
        }
    }

    // MARK: publishing

    /// A retained config of this bridge on the broker (left by this or an earlier run). One for
    /// a container that is not here is removed after `removeAfter`, unless the container comes
    /// back; one for a control the container no longer allows is removed now.
    private func noteRetainedConfig(_ topic: String, empty: Bool, _ context: ExtensionContext) {
        guard !empty else { return }
        let nodeID = nodeID
        let stale = state.withLock { s -> Bool in
            guard let key = Self.containerKey(fromConfigTopic: topic, nodeID: nodeID) else { return false }
            guard let current = s.published[key] else {
                s.published[key] = [topic: []]
                s.pendingRemoval[key] = .now + removeAfter
                return false
            }
            if current[topic] != nil { return false }
            if s.pendingRemoval[key] != nil {
                s.published[key]?[topic] = []
                return false
            }
            return true
        }
        if stale {
            context.publish(MQTTOutgoingMessage(topic: topic, payload: [], retain: true, droppable: false))
        }
    }

    private func publish(key: String, configs: [String: [UInt8]], force: Bool, _ context: ExtensionContext) {
        let (toSend, toDelete) = state.withLock { s -> ([(String, [UInt8])], [String]) in
            s.pendingRemoval.removeValue(forKey: key)
            let old = s.published[key] ?? [:]
            var send: [(String, [UInt8])] = []
            for (topic, payload) in configs.sorted(by: { $0.key < $1.key }) where force || old[topic] != payload {
                send.append((topic, payload))
            }
            let delete = old.keys.filter { configs[$0] == nil }.sorted()
            s.published[key] = configs
            return (send, delete)
        }
        for (topic, payload) in toSend {
            context.publish(MQTTOutgoingMessage(topic: topic, payload: payload, retain: true, droppable: false))
        }
        for topic in toDelete {
            context.publish(MQTTOutgoingMessage(topic: topic, payload: [], retain: true, droppable: false))
        }
    }

    private func removeExpired(_ context: ExtensionContext) {
        let now = ContinuousClock.now
        let topics = state.withLock { s -> [String] in
            var topics: [String] = []
            for (key, deadline) in s.pendingRemoval where deadline <= now {
                topics += (s.published[key] ?? [:]).keys.sorted()
                s.published.removeValue(forKey: key)
                s.pendingRemoval.removeValue(forKey: key)
            }
            return topics
        }
        guard !topics.isEmpty else { return }
        context.logger.info("removing \(topics.count) Home Assistant discovery configs of containers gone for \(removeAfter)")
        for topic in topics {
            context.publish(MQTTOutgoingMessage(topic: topic, payload: [], retain: true, droppable: false))
        }
    }

    /// Everything again: the bridge's own device, every container's configs, and (when Home
    /// Assistant restarted) the statuses, so that its entities have a state at once.
    private func republishAll(_ context: ExtensionContext, withStatuses: Bool = false) async {
        let (topic, payload) = bridgeDeviceConfig(topics: context.topics)
        context.publish(MQTTOutgoingMessage(topic: topic, payload: payload, retain: true, droppable: false))
        for c in await context.containers() {
            publish(key: "\(c.runtime.kind)/\(c.id)", configs: discoveryConfigs(c, topics: context.topics), force: true, context)
        }
        if withStatuses { await context.republishStatuses() }
    }

    // MARK: payloads

    static func sanitize(_ s: String) -> String {
        String(
            s.unicodeScalars.map { u -> Character in
                (u >= "a" && u <= "z") || (u >= "A" && u <= "Z") || (u >= "0" && u <= "9") || u == "_" || u == "-"
                    ? Character(u) : "_"
            })
    }

    /// An entity's object id as Home Assistant accepts it: lower-case letters, digits and `_`
    /// only (a `-` from a container or bridge name becomes `_`).
    static func objectID(_ s: String) -> String {
        String(
            s.lowercased().unicodeScalars.map { u -> Character in
                (u >= "a" && u <= "z") || (u >= "0" && u <= "9") || u == "_" ? Character(u) : "_"
            })
    }

    static func containerKey(fromConfigTopic topic: String, nodeID: String) -> String? {
        // <prefix>/<component>/<nodeID>/<runtime>_<id>_<kind>/config
        let parts = topic.split(separator: "/")
        guard parts.count >= 4, let i = parts.firstIndex(of: Substring(nodeID)), i + 1 < parts.count else { return nil }
        let object = parts[i + 1]
        guard let firstUnderscore = object.firstIndex(of: "_"),
            let suffix = entitySuffixes.first(where: { object.hasSuffix("_" + $0) }),
            object.distance(from: firstUnderscore, to: object.endIndex) > suffix.count + 1
        else { return nil }
        let runtime = object[..<firstUnderscore]
        let id = object[object.index(after: firstUnderscore)..<object.index(object.endIndex, offsetBy: -(suffix.count + 1))]
        return "\(runtime)/\(id)"
    }

    /// The object-id suffixes of a container's entities (some hold `_` themselves).
    static let entitySuffixes = [
        "power", "status", "wake", "stop", "pause", "unpause", "restart", "kill", "sleeps_at", "keep_awake", "activity",
    ]

    private func origin() -> String {
        var o = JSONWriter()
        o.add("name", "idlewatcher-bridge")
        o.add("sw_version", version)
        o.add("support_url", "https://github.com/idlewatcher/idlewatcher-bridge")
        return o.finish()
    }

    private func availability(_ topics: Topics) -> String {
        var a = JSONWriter()
        a.add("topic", topics.bridgeState)
        a.add("payload_available", "online")
        a.add("payload_not_available", "offline")
        return "[" + a.finish() + "]"
    }

    private var bridgeDeviceIdentifier: String { "idlewatcher_bridge_" + Self.sanitize(bridgeID) }

    private func bridgeDevice() -> String {
        var d = JSONWriter()
        d.add("identifiers", [bridgeDeviceIdentifier])
        d.add("name", "idlewatcher bridge \(bridgeID)")
        d.add("manufacturer", "idlewatcher")
        d.add("model", "idlewatcher-bridge")
        d.add("sw_version", version)
        return d.finish()
    }

    /// The bridge as a device of its own: a connectivity binary sensor on its state topic.
    func bridgeDeviceConfig(topics: Topics) -> (String, [UInt8]) {
        let object = "bridge_state"
        var w = JSONWriter()
        w.add("name", "Connection")
        w.add("unique_id", "\(nodeID)_\(object)")
        w.add("default_entity_id", "binary_sensor." + Self.objectID("\(nodeID)_connection"))
        w.add("device_class", "connectivity")
        w.add("entity_category", "diagnostic")
        w.add("state_topic", topics.bridgeState)
        w.add("payload_on", "online")
        w.add("payload_off", "offline")
        w.add("qos", Int64(1))
        w.addRaw("device", bridgeDevice())
        w.addRaw("origin", origin())
        return ("\(prefix)/binary_sensor/\(nodeID)/\(object)/config", Array(w.finish().utf8))
    }

    func discoveryConfigs(_ c: ContainerSnapshot, topics: Topics) -> [String: [UInt8]] {
        let kind = c.runtime.kind
        let id = c.id
        let allowed = c.allowed
        let objectBase = "\(kind.rawValue)_\(Self.sanitize(id))"
        let entityBase = "idlewatcher_\(Self.sanitize(bridgeID))_\(kind.rawValue)_\(Self.sanitize(id))".lowercased()
        let commandTopic = topics.command(kind, id)
        let statusTopic = topics.status(kind, id)

        var device = JSONWriter()
        device.add("identifiers", [entityBase])
        device.add("name", c.name)
        device.add("manufacturer", c.runtime.manufacturer)
        device.add("model", c.runtime.deviceModel(c.model, type: c.type))
        device.add("via_device", bridgeDeviceIdentifier)
        let deviceJSON = device.finish()

        func base(_ component: String, _ suffix: String, name: String?) -> JSONWriter {
            var w = JSONWriter()
            w.add("name", name)
            w.add("unique_id", "\(entityBase)_\(suffix)")
            w.add("default_entity_id", "\(component)." + Self.objectID("\(entityBase)_\(suffix)"))
            w.addRaw("availability", availability(topics))
            w.addRaw("device", deviceJSON)
            w.addRaw("origin", origin())
            w.add("qos", Int64(1))
            return w
        }
        var out: [String: [UInt8]] = [:]
        func put(_ component: String, _ suffix: String, _ w: JSONWriter) {
            out["\(prefix)/\(component)/\(nodeID)/\(objectBase)_\(suffix)/config"] = Array(w.finish().utf8)
        }

        let hasSwitch = allowed.contains(.wake) && allowed.contains(.stop)
        if hasSwitch {
            var w = base("switch", "power", name: nil)
            w.add("command_topic", commandTopic)
            w.add("payload_on", "wake")
            w.add("payload_off", "stop")
            w.add("state_topic", statusTopic)
            w.add("value_template", "{{ 'ON' if (value_json is defined and value_json.status == 'running') else 'OFF' }}")
            w.add("state_on", "ON")
            w.add("state_off", "OFF")
            w.add("optimistic", false)
            w.add("retain", false)
            w.add("icon", c.runtime.icon)
            put("switch", "power", w)
        }
        if state.withLock({ $0.idleManaged.contains("\(kind)/\(id)") }) {
            let idleTopic = topics.idle(kind, id)
            let activityTopic = topics.activity(kind, id)
            var sleeps = base("sensor", "sleeps_at", name: "Sleeps at")
            sleeps.add("state_topic", idleTopic)
            sleeps.add(
                "value_template", "{{ value_json.sleeps_at if (value_json is defined and value_json.sleeps_at) else None }}")
            sleeps.add("device_class", "timestamp")
            sleeps.add("icon", "mdi:sleep")
            put("sensor", "sleeps_at", sleeps)
            var keep = base("switch", "keep_awake", name: "Keep awake")
            keep.add("command_topic", activityTopic)
            keep.add("payload_on", #"{"holder":"homeassistant"}"#)
            keep.add("payload_off", #"{"holder":"homeassistant","release":true}"#)
            keep.add("state_topic", idleTopic)
            keep.add(
                "value_template",
                "{{ 'ON' if (value_json is defined and value_json.holders | selectattr('holder', 'equalto', 'homeassistant') | list | count > 0) else 'OFF' }}"
            )
            keep.add("state_on", "ON")
            keep.add("state_off", "OFF")
            keep.add("optimistic", false)
            keep.add("retain", false)
            keep.add("icon", "mdi:coffee")
            put("switch", "keep_awake", keep)
            var touch = base("button", "activity", name: "Activity")
            touch.add("command_topic", activityTopic)
            touch.add("payload_press", "touch")
            touch.add("retain", false)
            touch.add("icon", "mdi:gesture-tap")
            put("button", "activity", touch)
        }
        var sensor = base("sensor", "status", name: "Status")
        sensor.add("state_topic", statusTopic)
        sensor.add("value_template", "{{ value_json.status if value_json is defined else None }}")
        sensor.add("device_class", "enum")
        sensor.add("options", ContainerStatus.allCases.map(\.rawValue))
        sensor.add("json_attributes_topic", statusTopic)
        put("sensor", "status", sensor)

        // Without both wake and stop there is no switch; what is allowed of the two is a button.
        var buttons: [(Action, String, String, Bool)] = []
        if !hasSwitch {
            buttons += [(.wake, "Wake", "mdi:power", true), (.stop, "Stop", "mdi:stop", true)]
        }
        buttons += [
            (.pause, "Pause", "mdi:pause", true), (.unpause, "Unpause", "mdi:play", true),
            (.restart, "Restart", "mdi:restart", true), (.kill, "Kill", "mdi:skull", false),
        ]
        for (action, name, icon, enabled) in buttons where allowed.contains(action) {
            var w = base("button", action.rawValue, name: name)
            w.add("command_topic", commandTopic)
            w.add("payload_press", action.rawValue)
            w.add("icon", icon)
            w.add("retain", false)
            if !enabled { w.add("enabled_by_default", false) }
            put("button", action.rawValue, w)
        }
        return out
    }
}
