import Foundation
import IdlewatcherTesting
import Testing

/// A real broker, the real Podman service (`podman system service` on its unix socket), a
/// subscriber, and a bridge configured with a `podman:` section.
final class PodmanEnvironment: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let broker: MosquittoBroker
    let podman: PodmanFixture
    let observer: MQTTObserver
    var bridge: BridgeProcess?
    let bridgeID = "p\(UUID().uuidString.prefix(6).lowercased())"

    init() async throws {
        broker = try await MosquittoBroker()
        podman = try await PodmanFixture()
        observer = try MQTTObserver(broker: broker)
        try await observer.ready(broker: broker)
    }

    /// Starts the bridge on Podman (plus `extra` YAML) and waits for `online`.
    func startBridge(podmanExtra: String = "", extra: String = "homeassistant:\n  enabled: false") async throws {
        let yaml = """
            bridge:
              id: \(bridgeID)
            mqtt:
              url: \(broker.url)
            podman:
              - url: unix://\(PodmanFixture.socketPath)
            \(podmanExtra)
            \(extra)
            """
        let b = try BridgeProcess(yaml: yaml, bridgeID: bridgeID)
        bridge = b
        try await eventually("the bridge to publish online; log:\n\(b.log)", timeout: .seconds(20)) {
            self.observer.messages(on: "idlewatcher/bridge/\(self.bridgeID)/state").contains { $0.payload == "online" }
        }
    }

    func topic(_ id: String, _ leaf: String, runtime: String = "podman") -> String { "idlewatcher/\(runtime)/\(id)/\(leaf)" }

    func send(_ id: String, _ payload: String) throws {
        try MQTT.publish(broker: broker, topic: topic(id, "command"), payload: payload)
    }

    /// Sends a JSON command with a fresh request id and waits for its reply.
    func command(_ id: String, _ json: [String: Any], timeout: Duration = .seconds(30)) async throws -> ObservedMessage {
        var body = json
        let rid = "req-\(UUID().uuidString.prefix(8))"
        body["request_id"] = rid
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        try send(id, String(decoding: data, as: UTF8.self))
        return try await observer.waitFor(topic(id, "reply"), timeout: timeout) { $0.string("request_id") == rid }
    }

    func waitForStatus(_ id: String, _ status: String, timeout: Duration = .seconds(20)) async throws {
        try await eventually(
            "status \(status) for \(id); saw \(observer.messages(on: topic(id, "status")).map(\.payload))", timeout: timeout
        ) {
            self.observer.messages(on: self.topic(id, "status")).last?.string("status") == status
        }
    }

    func events(_ id: String) -> [ObservedMessage] { observer.messages(on: topic(id, "event")) }

    func tearDown() async {
        if let bridge { await bridge.stop() }
        await observer.stop()
        podman.cleanUp()
        await broker.stop()
    }
}

func withPodman(_ body: (PodmanEnvironment) async throws -> Void) async throws {
    let env = try await PodmanEnvironment()
    do {
        try await body(env)
    } catch {
        if let b = env.bridge { print("--- bridge log ---\n\(b.log.suffix(6000))") }
        await env.tearDown()
        throw error
    }
    await env.tearDown()
}

/// Docker's event words: what the bridge publishes for Podman too (Podman's own `died`,
/// `remove`, `init`, `cleanup` are mapped or dropped).
let engineActions: Set<String> = [
    "create", "start", "restart", "pause", "unpause", "kill", "stop", "die", "destroy", "oom", "rename", "health_status",
]

@Suite("Podman, through the Engine API seam")
struct PodmanTests {
    @Test("every command on a real Podman container: replies, events in Docker's words, retained statuses")
    func commands() async throws {
        try await withPodman { env in
            let name = try env.podman.runQuickStopper("app")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let status = try #require(env.observer.messages(on: env.topic(name, "status")).last)
            #expect(status.string("runtime") == "podman")
            #expect(status.string("id") == name)

            try env.send(name, "pause")
            let paused = try await env.observer.waitFor(env.topic(name, "reply")) { $0.string("action") == "pause" }
            #expect(paused.json?["ok"] as? Bool == true, "\(paused.payload)")
            #expect(paused.string("status") == "paused")
            #expect(paused.string("runtime") == "podman")
            #expect(env.podman.state(name) == "paused")
            try await env.waitForStatus(name, "paused")
            let pauseEvent = try await env.observer.waitFor(env.topic(name, "event")) { $0.string("action") == "pause" }
            #expect(pauseEvent.string("status") == "paused")
            #expect(pauseEvent.string("runtime") == "podman")
            #expect(pauseEvent.string("ref")?.count == 64)

            let unpause = try await env.command(name, ["action": "unpause"])
            #expect(unpause.string("status") == "running", "\(unpause.payload)")
            try await env.waitForStatus(name, "running")

            let stop = try await env.command(name, ["action": "stop", "signal": "SIGTERM", "timeout": 5])
            #expect(stop.json?["ok"] as? Bool == true, "\(stop.payload)")
            #expect(stop.string("status") == "stopped")
            #expect(env.podman.state(name) == "exited")
            try await env.waitForStatus(name, "stopped")

            let start = try await env.command(name, ["action": "start"])
            #expect(start.string("status") == "running", "\(start.payload)")
            try await env.waitForStatus(name, "running")

            let hup = try await env.command(name, ["action": "kill", "signal": "SIGHUP"])
            #expect(hup.json?["ok"] as? Bool == true, "\(hup.payload)")
            #expect(hup.string("status") == "running", "a non-fatal signal leaves it running")

            let restart = try await env.command(name, ["action": "restart", "timeout": 5])
            #expect(restart.string("status") == "running", "\(restart.payload)")

            let kill = try await env.command(name, ["action": "kill"])
            #expect(kill.string("status") == "stopped", "\(kill.payload)")
            try await env.waitForStatus(name, "stopped")

            let wake = try await env.command(name, ["action": "wake"])
            #expect(wake.string("status") == "running", "\(wake.payload)")
            try await env.waitForStatus(name, "running")

            let actions = env.events(name).compactMap { $0.string("action") }
            #expect(Set(actions).isSubset(of: engineActions), "\(actions)")
            #expect(actions.contains("unpause") && actions.contains("restart") && actions.contains("start"), "\(actions)")
            // Every event's status is true: the last one says what Podman says now.
            #expect(env.events(name).last?.string("status") == "running")
        }
    }

    @Test("stop of a paused Podman container stops it (Podman refuses that alone; the bridge unpauses first)")
    func stopPaused() async throws {
        try await withPodman { env in
            let name = try env.podman.runQuickStopper("paused")
            try env.podman.cli("pause", name)
            try await env.startBridge()
            try await env.waitForStatus(name, "paused")
            let stop = try await env.command(name, ["action": "stop", "timeout": 5])
            #expect(stop.json?["ok"] as? Bool == true, "\(stop.payload)")
            #expect(stop.string("status") == "stopped")
            #expect(env.podman.state(name) == "exited")
            try await env.waitForStatus(name, "stopped")
        }
    }

    @Test("changes made with the podman CLI become events and statuses; a removed container's status is cleared")
    func outsideChanges() async throws {
        try await withPodman { env in
            try await env.startBridge()
            let name = try env.podman.run("cli")
            try await env.waitForStatus(name, "running")
            #expect(env.events(name).contains { $0.string("action") == "create" }, "\(env.events(name).map(\.payload))")
            try env.podman.cli("stop", "-t", "1", name)
            try await env.waitForStatus(name, "stopped")
            try env.podman.cli("rm", name)
            try await eventually("the retained status cleared") {
                env.observer.messages(on: env.topic(name, "status")).last?.payload == ""
            }
            let actions = env.events(name).compactMap { $0.string("action") }
            #expect(actions.last == "destroy", "\(actions)")
            #expect(Set(actions).isSubset(of: engineActions), "\(actions)")
        }
    }

    @Test("labels and include/exclude apply to Podman containers as to Docker ones")
    func exposure() async throws {
        try await withPodman { env in
            let hidden = try env.podman.run("hidden", labels: ["idlewatcher.enable": "false"])
            let narrow = try env.podman.run("narrow", labels: ["idlewatcher.allow": "status,wake"])
            let excluded = try env.podman.run("excluded")
            try await env.startBridge(podmanExtra: "    exclude: [\(excluded)]")
            try await env.waitForStatus(narrow, "running")
            let refused = try await env.command(narrow, ["action": "stop"])
            #expect((refused.json?["error"] as? [String: Any])?["code"] as? String == "not_allowed", "\(refused.payload)")
            #expect(env.podman.state(narrow) == "running")
            for gone in [hidden, excluded] {
                let r = try await env.command(gone, ["action": "stop"])
                #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_found", "\(r.payload)")
                #expect(env.podman.state(gone) == "running")
                #expect(env.observer.messages(on: env.topic(gone, "status")).isEmpty)
            }
        }
    }

    @Test("Home Assistant discovery: a Podman device with its image, commands on the podman topics")
    func homeAssistant() async throws {
        try await withPodman { env in
            let name = try env.podman.run("ha")
            try await env.startBridge(extra: "homeassistant:\n  enabled: true\n  prefix: homeassistant")
            let topic = "homeassistant/switch/idlewatcher_\(env.bridgeID)/podman_\(name)_power/config"
            let config = try await env.observer.waitFor(topic)
            #expect(config.string("command_topic") == env.topic(name, "command"))
            #expect(config.string("state_topic") == env.topic(name, "status"))
            let device = try #require(config.json?["device"] as? [String: Any])
            #expect(device["manufacturer"] as? String == "Podman")
            #expect((device["model"] as? String)?.hasPrefix("Podman container (") == true, "\(device)")
            let entity = try #require(config.string("default_entity_id"))
            #expect(!entity.contains("-"), "Home Assistant entity ids have no hyphens: \(entity)")
        }
    }

    @Test("Docker and Podman side by side on one bridge, each under its own runtime segment")
    func sideBySide() async throws {
        try await withPodman { env in
            let docker = try await DockerFixture()
            defer { docker.cleanUp() }
            let d = try docker.run("both")
            let p = try env.podman.run("both")
            try await env.startBridge(extra: "docker:\n  - url: unix:///var/run/docker.sock\nhomeassistant:\n  enabled: false")
            try await env.waitForStatus(p, "running")
            try await eventually("the Docker status") {
                env.observer.messages(on: env.topic(d, "status", runtime: "docker")).last?.string("runtime") == "docker"
            }
            try MQTT.publish(broker: env.broker, topic: env.topic(d, "command", runtime: "docker"), payload: "pause")
            try await eventually("docker paused") { docker.state(d) == "paused" }
            #expect(env.podman.state(p) == "running", "a Docker command never touches Podman")
            let r = try await env.command(d, ["action": "status"])
            #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_found", "\(d) is not a Podman container")
        }
    }
}
