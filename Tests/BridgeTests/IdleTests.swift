import Foundation
import IdlewatcherTesting
import Testing

extension TestEnvironment {
    /// The last idle state a subscriber saw for `id` (nil: none yet; "" payload: cleared).
    func idleState(_ id: String) -> ObservedMessage? { observer.messages(on: topic(id, "idle")).last }

    /// Publishes on the container's activity topic as a media player or a person would.
    func activity(_ id: String, _ payload: String, retain: Bool = false) throws {
        try MQTT.publish(broker: broker, topic: topic(id, "activity"), payload: payload, retain: retain)
    }

    /// When the container's status last turned `status`, as the subscriber received it (seconds since 1970).
    func statusTime(_ id: String, _ status: String) -> Double? {
        observer.messages(on: topic(id, "status")).last { $0.string("status") == status }?.receivedAt
    }

    /// Watches for `window`: true if `id`'s container kept running all along.
    func staysRunning(_ id: String, for window: Duration) async throws -> Bool {
        let end = ContinuousClock.now + window
        while ContinuousClock.now < end {
            if docker.state(id) != "running" { return false }
            try await Task.sleep(for: .milliseconds(200))
        }
        return docker.state(id) == "running"
    }
}

/// The idle policy (contract v1.1, "Idle policy") on real containers and a real broker.
@Suite("Idle timers, activity and leases")
struct IdleTests {
    static let idle3s = ["idlewatcher.idle_timeout": "3s"]

    /// Idle settings in the bridge's own config (`idle.containers`), so that another bridge on
    /// the same Docker host (a developer's `make run`) has no label to act on.
    static func idle(_ entries: [(String, String)]) -> String {
        "idle:\n  containers:\n" + entries.map { "    docker/\($0.0): {\($0.1)}" }.joined(separator: "\n")
    }
    @Test("a container with a 3 s idle timeout is stopped 3 s after its last activity, another paused; not before")
    func sleepsOnTime() async throws {
        try await withEnvironment { env in
            let stop = try env.docker.runQuickStopper("stop", labels: Self.idle3s)
            let pause = try env.docker.run(
                "pause", labels: Self.idle3s.merging(["idlewatcher.idle_action": "pause"]) { a, _ in a })
            try await env.startBridge()
            let state = try await env.observer.waitFor(env.topic(stop, "idle")) { !$0.payload.isEmpty }
            #expect((state.json?["timeout_s"] as? Int) == 3)
            #expect(state.string("action") == "stop")
            #expect(state.string("bridge") == env.bridgeID)
            #expect(state.json?["holders"] as? [Any] != nil)
            let lastActivity = try #require(state.string("last_activity").flatMap(Self.seconds))
            let sleepsAt = try #require(state.string("sleeps_at").flatMap(Self.seconds))
            #expect(abs(sleepsAt - lastActivity - 3) < 0.01)
            try await env.waitForStatus(stop, "stopped", timeout: .seconds(15))
            try await env.waitForStatus(pause, "paused", timeout: .seconds(15))
            #expect(env.docker.state(stop) == "exited")
            #expect(env.docker.state(pause) == "paused")
            let stoppedAt = try #require(env.statusTime(stop, "stopped"))
            #expect(stoppedAt - lastActivity >= 3.0, "put to sleep early: \(stoppedAt - lastActivity) s")
            #expect(stoppedAt - lastActivity < 4.5, "put to sleep late: \(stoppedAt - lastActivity) s")
            let events = env.eventActions(stop)
            #expect(events.contains("die"), "the runtime's own events: \(events)")
            try await eventually("the idle state says it sleeps (sleeps_at null)") {
                env.idleState(stop)?.json?["sleeps_at"] is NSNull
            }
        }
    }

    @Test("a touch postpones the sleep; a lease without ttl holds it until released; a ttl that ends lets it sleep")
    func touchesAndLeases() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("leased")
            try await env.startBridge(extra: Self.idle([(name, "timeout: 3s")]))
            try await env.observer.waitFor(env.topic(name, "idle")) { !$0.payload.isEmpty }
            // A touch at 2 s: asleep not before 3 s after it.
            try await Task.sleep(for: .seconds(2))  // the scenario's own timeline, not synchronisation
            try env.activity(name, "")
            let touched = Date().timeIntervalSince1970
            try await env.waitForStatus(name, "stopped", timeout: .seconds(15))
            #expect(try #require(env.statusTime(name, "stopped")) - touched >= 2.9)

            // A lease without ttl: awake well past the timeout, until released.
            try await env.command(name, ["action": "start"])
            try env.activity(name, #"{"holder":"tv"}"#)
            try await eventually("the lease in the idle state") {
                (env.idleState(name)?.json?["holders"] as? [[String: Any]])?.first?["holder"] as? String == "tv"
            }
            #expect(env.idleState(name)?.json?["sleeps_at"] is NSNull)
            #expect(try await env.staysRunning(name, for: .seconds(6)), "put to sleep while a lease was held")
            try env.activity(name, #"{"holder":"tv","release":true}"#)
            let released = Date().timeIntervalSince1970
            try await env.waitForStatus(name, "stopped", timeout: .seconds(15))
            #expect(try #require(env.statusTime(name, "stopped")) - released >= 2.9, "the release is activity too")

            // A lease with a 5 s ttl: awake until it ends (past the 3 s timeout), then asleep.
            try await env.command(name, ["action": "wake"])
            try env.activity(name, #"{"holder":"game","ttl":"5s"}"#)
            let leased = Date().timeIntervalSince1970
            try await env.waitForStatus(name, "stopped", timeout: .seconds(15))
            let slept = try #require(env.statusTime(name, "stopped")) - leased
            #expect(slept >= 4.9 && slept < 7, "slept \(slept) s after a 5 s lease")
        }
    }

    @Test("a retained activity message changes nothing")
    func retainedActivity() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("retained")
            try await env.startBridge(extra: Self.idle([(name, "timeout: 3s")]))
            let first = try await env.observer.waitFor(env.topic(name, "idle")) { !$0.payload.isEmpty }
            let lastActivity = try #require(first.string("last_activity").flatMap(Self.seconds))
            try env.activity(name, #"{"holder":"ghost"}"#, retain: true)
            try await env.waitForStatus(name, "stopped", timeout: .seconds(15))
            let stoppedAt = try #require(env.statusTime(name, "stopped"))
            #expect(stoppedAt - lastActivity < 4.5, "a retained lease kept it awake")
            #expect(
                env.observer.messages(on: env.topic(name, "idle")).allSatisfy { m in
                    ((m.json?["holders"] as? [[String: Any]]) ?? []).isEmpty
                })
            try env.activity(name, "", retain: true)  // clear it
            #expect(env.bridge!.log.contains("ignored a retained activity message"))
        }
    }

    @Test("SIGKILL the bridge while a lease is held, start it again: the lease holds")
    func leaseSurvivesRestart() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("survivor")
            let config = Self.idle([(name, "timeout: 3s")])
            try await env.startBridge(extra: config)
            try await env.observer.waitFor(env.topic(name, "idle")) { !$0.payload.isEmpty }
            try env.activity(name, #"{"holder":"tv"}"#)
            try await eventually("the lease retained") {
                (env.idleState(name)?.json?["holders"] as? [[String: Any]])?.count == 1
            }
            env.bridge!.child.signal(SIGKILL)
            try await eventually("the will says offline") {
                env.observer.messages(on: env.stateTopic).last?.payload == "offline"
            }
            try await env.startBridge(extra: config)
            #expect(try await env.staysRunning(name, for: .seconds(6)), "the restarted bridge forgot the lease")
            let holders = env.idleState(name)?.json?["holders"] as? [[String: Any]]
            #expect(holders?.first?["holder"] as? String == "tv")
            try env.activity(name, #"{"holder":"tv","release":true}"#)
            try await env.waitForStatus(name, "stopped", timeout: .seconds(15))
        }
    }

    @Test("while the bridge is down: a container started by hand gets a whole timeout; one removed has its idle state cleared")
    func changesWhileDown() async throws {
        try await withEnvironment { env in
            let sleeper = try env.docker.runQuickStopper("sleeper")
            let gone = try env.docker.runQuickStopper("gone")
            let config = Self.idle([(sleeper, "timeout: 4s"), (gone, "timeout: 1h")])
            try await env.startBridge(extra: config)
            try await env.waitForStatus(sleeper, "stopped", timeout: .seconds(15))
            try await eventually("the idle state of the sleeper says asleep") {
                env.idleState(sleeper)?.json?["sleeps_at"] is NSNull
            }
            try await env.observer.waitFor(env.topic(gone, "idle")) { !$0.payload.isEmpty }
            await env.bridge!.stop()
            try env.docker.cli("start", sleeper)
            try env.docker.cli("rm", "-f", gone)
            let restarted = Date().timeIntervalSince1970
            try await env.startBridge(extra: config)
            try await eventually("the gone container's idle state cleared") { env.idleState(gone)?.payload == "" }
            try await env.observer.waitFor(env.topic(sleeper, "status"), timeout: .seconds(20)) {
                $0.string("status") == "stopped" && $0.receivedAt > restarted
            }
            let slept = try #require(env.statusTime(sleeper, "stopped")) - restarted
            #expect(slept >= 3.9, "a container started while the bridge was down slept \(slept) s after the restart")
        }
    }

    @Test("an idle action that is not allowed, and a protected container: never put to sleep, and the log says so")
    func notAllowed() async throws {
        try await withEnvironment { env in
            let narrow = try env.docker.runQuickStopper("narrow", labels: ["idlewatcher.allow": "status,wake"])
            let guarded = try env.docker.runQuickStopper("guarded")
            try await env.startBridge(
                dockerExtra: "    protected: [\(guarded)]", extra: Self.idle([(narrow, "timeout: 3s"), (guarded, "timeout: 3s")]))
            try await env.observer.waitFor(env.topic(narrow, "idle")) { !$0.payload.isEmpty }
            #expect(env.idleState(narrow)?.json?["sleeps_at"] is NSNull)
            #expect(try await env.staysRunning(narrow, for: .seconds(5)))
            #expect(env.docker.state(guarded) == "running")
            let log = env.bridge!.log
            #expect(
                log.contains("docker/\(narrow) is idle-managed but its idle action stop is not allowed"), "\(log.suffix(3000))")
            #expect(log.contains("docker/\(guarded) is idle-managed but its idle action stop is not allowed"))
        }
    }

    @Test("bad activity payloads change nothing, and are logged once a minute at most")
    func badActivity() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("fuzzed", labels: ["idlewatcher.idle_timeout": "1h"])
            try await env.startBridge()
            let first = try await env.observer.waitFor(env.topic(name, "idle")) { !$0.payload.isEmpty }
            var rng = SystemRandomNumberGenerator()
            var payloads = [
                "{", "{}", #"{"holder":""}"#, #"{"holder":5}"#, #"{"holder":"x","ttl":"0s"}"#, #"{"holder":"x","ttl":"8d"}"#,
                #"{"holder":"x","ttl":3}"#, #"{"holder":"x","colour":"red"}"#, #"{"holder":"x","release":"yes"}"#,
                #"{"holder":"x","release":true,"ttl":"1h"}"#, "{" + String(repeating: "a", count: 5000) + "}",
                #"{"holder":"\#(String(repeating: "h", count: 129))"}"#, "[1,2]",
            ]
            for _ in 0..<30 {
                var junk = "{"
                for _ in 0..<Int.random(in: 1...40, using: &rng) {
                    junk.append(Character(UnicodeScalar(UInt8.random(in: 32...126, using: &rng))))
                }
                payloads.append(junk)
            }
            for p in payloads where !p.hasPrefix("[") { try env.activity(name, p) }
            // A probe touch after them: once its effect shows, every bad one was handled before it.
            try await Task.sleep(for: .milliseconds(1100))  // a later last_activity than the first state, by more than the rate limit
            try env.activity(name, "probe")
            try await eventually("the probe's touch") {
                env.idleState(name)?.string("last_activity") != first.string("last_activity")
            }
            for m in env.observer.messages(on: env.topic(name, "idle")) {
                #expect(((m.json?["holders"] as? [[String: Any]]) ?? []).isEmpty, "a bad payload took a lease: \(m.payload)")
            }
            let lines = env.bridge!.log.split(separator: "\n").filter { $0.contains("ignored an activity message") }
            #expect(lines.count == 1, "\(lines.count) log lines for \(payloads.count) bad payloads")
        }
    }

    @Test("Home Assistant: Sleeps at, Keep awake and Activity on the container's device, and they work")
    func homeAssistant() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("ha", labels: ["idlewatcher.idle_timeout": "1h"])
            let plain = try env.docker.run("plain")
            try await env.startBridge(extra: HomeAssistantTests.haConfig)
            let node = "idlewatcher_\(env.bridgeID)"
            let object = "docker_\(name)"
            let sleeps = try await env.observer.waitFor("homeassistant/sensor/\(node)/\(object)_sleeps_at/config")
            let keep = try await env.observer.waitFor("homeassistant/switch/\(node)/\(object)_keep_awake/config")
            let touch = try await env.observer.waitFor("homeassistant/button/\(node)/\(object)_activity/config")
            Self.checkSchema("sensor", sleeps, device: name)
            Self.checkSchema("switch", keep, device: name)
            Self.checkSchema("button", touch, device: name)
            #expect(sleeps.string("device_class") == "timestamp")
            #expect(sleeps.string("state_topic") == env.topic(name, "idle"))
            #expect(keep.string("command_topic") == env.topic(name, "activity"))
            #expect(touch.string("command_topic") == env.topic(name, "activity"))
            #expect(
                !env.observer.messages.contains { $0.topic.contains("docker_\(plain)_keep_awake") },
                "only idle-managed containers")

            // What Home Assistant sends when the switch is turned on: a lease held by homeassistant.
            try env.activity(name, keep.string("payload_on")!)
            try await eventually("the homeassistant lease") {
                (env.idleState(name)?.json?["holders"] as? [[String: Any]])?.first?["holder"] as? String == "homeassistant"
            }
            try env.activity(name, keep.string("payload_off")!)
            try await eventually("released") { (env.idleState(name)?.json?["holders"] as? [[String: Any]])?.isEmpty == true }
            // The button: a touch (last_activity moves on).
            let before = env.idleState(name)?.string("last_activity")
            try await Task.sleep(for: .milliseconds(1100))  // past the once-a-second rate limit, so a change can show
            try env.activity(name, touch.string("payload_press")!)
            try await eventually("the touch") { env.idleState(name)?.string("last_activity") != before }
        }
    }

    /// Only keys Home Assistant's schema for `component` knows; on the container's device.
    static func checkSchema(_ component: String, _ m: ObservedMessage, device: String) {
        let json = m.json ?? [:]
        let unknown = Set(json.keys).subtracting(HomeAssistantTests.allowedKeys[component] ?? [])
        #expect(!json.isEmpty && unknown.isEmpty, "\(component) has keys Home Assistant does not know: \(unknown)")
        #expect((json["device"] as? [String: Any])?["name"] as? String == device, "on the container's device")
        #expect((json["default_entity_id"] as? String)?.contains("-") == false)
    }

    static func seconds(_ rfc3339: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: rfc3339)?.timeIntervalSince1970
    }
}
