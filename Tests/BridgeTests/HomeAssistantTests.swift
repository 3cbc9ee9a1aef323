import Foundation
import IdlewatcherTesting
import Testing

/// Home Assistant MQTT discovery, checked key by key against Home Assistant's documented
/// schema for each component (mqtt switch, sensor, button, binary_sensor).
@Suite("Home Assistant discovery")
struct HomeAssistantTests {
    static let haConfig = "homeassistant:\n  enabled: true\n  prefix: homeassistant\n  remove_after: 2s"

    func configs(_ env: TestEnvironment) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for m in env.observer.messages where m.topic.hasPrefix("homeassistant/") && m.topic.hasSuffix("/config") {
            if m.payload.isEmpty { out.removeValue(forKey: m.topic) } else { out[m.topic] = m.json }
        }
        return out
    }

    /// Keys Home Assistant's MQTT integration accepts for these components (its documentation).
    static let common: Set<String> = [
        "name", "unique_id", "default_entity_id", "availability", "device", "origin", "qos", "icon",
        "enabled_by_default", "entity_category", "json_attributes_topic",
    ]
    static let allowedKeys: [String: Set<String>] = [
        "switch": common.union([
            "command_topic", "state_topic", "payload_on", "payload_off", "state_on", "state_off", "value_template", "optimistic",
            "retain",
        ]),
        "sensor": common.union(["state_topic", "value_template", "device_class", "options"]),
        "button": common.union(["command_topic", "payload_press", "retain"]),
        "binary_sensor": common.union(["state_topic", "payload_on", "payload_off", "device_class"]),
    ]

    @Test("one device per container with switch, enum sensor and buttons, keyed as Home Assistant documents them")
    func discoveryPayloads() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("media")
            try await env.startBridge(extra: Self.haConfig)
            let node = "idlewatcher_\(env.bridgeID)"
            let object = "docker_\(name)"
            let switchTopic = "homeassistant/switch/\(node)/\(object)_power/config"
            try await eventually("discovery configs") { self.configs(env).count >= 7 }
            let all = configs(env)

            let sw = try #require(all[switchTopic], "\(all.keys.sorted())")
            #expect(sw["command_topic"] as? String == env.topic(name, "command"))
            #expect(sw["state_topic"] as? String == env.topic(name, "status"))
            #expect(sw["payload_on"] as? String == "wake")
            #expect(sw["payload_off"] as? String == "stop")
            #expect(sw["object_id"] == nil, "object_id is deprecated")
            #expect((sw["default_entity_id"] as? String)?.hasPrefix("switch.") == true)
            #expect(sw["retain"] as? Bool == false)
            let availability = try #require(sw["availability"] as? [[String: Any]])
            #expect(availability.first?["topic"] as? String == env.stateTopic)
            #expect(availability.first?["payload_available"] as? String == "online")
            #expect(availability.first?["payload_not_available"] as? String == "offline")
            let device = try #require(sw["device"] as? [String: Any])
            #expect(device["name"] as? String == name)
            #expect((device["model"] as? String)?.contains("idlewatcher-test/busybox") == true)
            #expect(device["via_device"] as? String == "idlewatcher_bridge_\(env.bridgeID)")
            #expect((device["identifiers"] as? [String])?.count == 1)
            let origin = try #require(sw["origin"] as? [String: Any])
            #expect(origin["name"] as? String == "idlewatcher-bridge")
            #expect(origin["sw_version"] as? String == (try BridgeProcess.sourceVersion()))
            #expect(origin["support_url"] is String)

            let sensor = try #require(all["homeassistant/sensor/\(node)/\(object)_status/config"])
            #expect(sensor["device_class"] as? String == "enum")
            #expect(sensor["options"] as? [String] == ["running", "stopped", "paused", "error"])
            #expect(sensor["state_topic"] as? String == env.topic(name, "status"))

            for action in ["pause", "unpause", "restart", "kill"] {
                let b = try #require(all["homeassistant/button/\(node)/\(object)_\(action)/config"], "button \(action)")
                #expect(b["payload_press"] as? String == action)
                #expect(b["command_topic"] as? String == env.topic(name, "command"))
            }
            #expect(all["homeassistant/button/\(node)/\(object)_kill/config"]?["enabled_by_default"] as? Bool == false)
            #expect(all["homeassistant/button/\(node)/\(object)_pause/config"]?["enabled_by_default"] == nil)

            let bridgeDevice = try #require(all["homeassistant/binary_sensor/\(node)/bridge_state/config"])
            #expect(bridgeDevice["state_topic"] as? String == env.stateTopic)
            #expect(
                (bridgeDevice["device"] as? [String: Any])?["identifiers"] as? [String] == ["idlewatcher_bridge_\(env.bridgeID)"])
            #expect((bridgeDevice["device"] as? [String: Any])?["sw_version"] is String)

            var uniqueIDs = Set<String>()
            for (topic, config) in all {
                let component = String(topic.split(separator: "/")[1])
                let allowed = try #require(Self.allowedKeys[component], "unexpected component \(component)")
                let unknown = Set(config.keys).subtracting(allowed)
                #expect(unknown.isEmpty, "\(topic) has keys Home Assistant does not document: \(unknown)")
                let uid = try #require(config["unique_id"] as? String)
                #expect(uniqueIDs.insert(uid).inserted, "unique_id \(uid) is used twice")
                #expect((config["default_entity_id"] as? String)?.hasPrefix(component + ".") == true)
                #expect(config["origin"] != nil)
            }
            // Retained, so Home Assistant finds them whenever it starts. The observer subscribed
            // before the bridge published, so it cannot see the flag: a fresh subscriber, arriving
            // after the configs were published, must get every one of them, flagged retained, as
            // last published. Fails if any config is published without the retain flag.
            // (This container's and the bridge's own: other containers of this Docker host may
            // come and go meanwhile.)
            func ours(_ topic: String) -> Bool {
                topic.contains("/\(node)/\(object)_") || topic.contains("/\(node)/bridge_")
            }
            var lastPublished: [String: String] = [:]
            for m in env.observer.messages
            where m.topic.hasPrefix("homeassistant/") && m.topic.hasSuffix("/config") && ours(m.topic) {
                lastPublished[m.topic] = m.payload.isEmpty ? nil : m.payload
            }
            let fresh = try await MQTT.retained(
                filter: "homeassistant/+/\(node)/+/config", connection: ["-p", "\(env.broker.port)"]
            )
            .filter { ours($0.topic) }
            #expect(fresh.allSatisfy { $0.retained }, "\(fresh)")
            #expect(Set(fresh.map(\.topic)).count == fresh.count, "one retained message per topic")
            #expect(
                Dictionary(fresh.map { ($0.topic, $0.payload) }, uniquingKeysWith: { a, _ in a }) == lastPublished,
                "retained: \(fresh.map(\.topic).sorted())\npublished: \(lastPublished.keys.sorted())")
            #expect(
                lastPublished.count >= 7 && lastPublished[switchTopic] != nil,
                "not an empty comparison: \(lastPublished.keys.sorted())")

            // The switch works as Home Assistant would use it.
            try env.send(name, "stop")
            try await env.waitForStatus(name, "stopped", timeout: .seconds(30))
        }
    }

    @Test("only the actions a container allows get a control")
    func onlyAllowedControls() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("narrow", labels: ["idlewatcher.allow": "wake,status"])
            try await env.startBridge(extra: Self.haConfig)
            let node = "idlewatcher_\(env.bridgeID)"
            try await eventually("the sensor config") { self.configs(env).keys.contains { $0.contains("\(name)_status") } }
            let mine = configs(env).keys.filter { $0.contains("/\(node)/docker_\(name)_") }.sorted()
            #expect(
                mine == [
                    "homeassistant/button/\(node)/docker_\(name)_wake/config",
                    "homeassistant/sensor/\(node)/docker_\(name)_status/config",
                ])
        }
    }

    @Test("Home Assistant restarting (homeassistant/status online) gets discovery and statuses again")
    func homeAssistantRestart() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("again")
            try await env.startBridge(extra: Self.haConfig)
            let node = "idlewatcher_\(env.bridgeID)"
            let sensor = "homeassistant/sensor/\(node)/docker_\(name)_status/config"
            try await env.observer.waitFor(sensor)
            try await env.waitForStatus(name, "running")
            let configsBefore = env.observer.messages(on: sensor).count
            let statusesBefore = env.observer.messages(on: env.topic(name, "status")).count
            try MQTT.publish(broker: env.broker, topic: "homeassistant/status", payload: "online")
            try await eventually("discovery again") { env.observer.messages(on: sensor).count > configsBefore }
            try await eventually("statuses again") { env.observer.messages(on: env.topic(name, "status")).count > statusesBefore }
        }
    }

    @Test("a removed container keeps its entities for remove_after; one that comes back in time keeps them for good")
    func removeAfter() async throws {
        try await withEnvironment { env in
            let gone = try env.docker.run("gone")
            let back = try env.docker.run("back")
            try await env.startBridge(extra: Self.haConfig)
            let node = "idlewatcher_\(env.bridgeID)"
            let goneSensor = "homeassistant/sensor/\(node)/docker_\(gone)_status/config"
            let backSensor = "homeassistant/sensor/\(node)/docker_\(back)_status/config"
            try await env.observer.waitFor(goneSensor)
            try await env.observer.waitFor(backSensor)

            let removedAt = Date()
            try env.docker.cli("rm", "-f", gone, back)
            try env.docker.run("back")  // recreated under the same name, as compose does
            try await eventually("the gone container's configs to be deleted", timeout: .seconds(20)) {
                env.observer.messages(on: goneSensor).last?.payload == ""
            }
            #expect(Date().timeIntervalSince(removedAt) >= 1.9, "not before remove_after (2s)")
            // Everything of the gone container went; the one that came back kept its entities.
            let goneTopics = Set(
                env.observer.messages.filter { $0.topic.contains("docker_\(gone)_") && $0.topic.hasSuffix("/config") }.map(
                    \.topic))
            for t in goneTopics { #expect(env.observer.messages(on: t).last?.payload == "", "\(t)") }
            #expect(env.observer.messages(on: backSensor).allSatisfy { !$0.payload.isEmpty })
            try await env.waitForStatus(back, "running")
        }
    }
}
