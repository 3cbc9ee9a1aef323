import Foundation
import IdlewatcherTesting
import Testing

/// The process as users and other bridges see it: availability, shutdown, retained state.
@Suite("The bridge process")
struct ProcessTests {
    @Test("online while running; SIGTERM publishes offline and exits 0")
    func availability() async throws {
        try await withEnvironment { env in
            let b = try await env.startBridge()
            let online = try await env.observer.waitFor(env.stateTopic) { $0.payload == "online" }
            #expect(online.payload == "online")
            let status = await b.stop()
            #expect(status == 0)
            try await env.observer.waitFor(env.stateTopic) { $0.payload == "offline" }
            #expect(try await env.retainedState() == "offline", "a subscriber arriving now reads offline")
            // The bridge's own last word, not any line that mentions a stopped container: the
            // last line of its log is the info line "stopped".
            let last = try #require(b.log.split(separator: "\n").last)
            #expect(last.hasSuffix("] stopped") && last.contains(" info "), "last log line: \(last)")
            env.bridge = nil
        }
    }

    @Test("health: exit 0 while connected to the broker and Docker, 1 once the bridge is gone")
    func health() async throws {
        try await withEnvironment { env in
            let b = try await env.startBridge()
            try await eventually("health to say healthy", timeout: .seconds(15)) {
                let r = try run([BridgeProcess.executable, "health", "--config", b.configURL.path])
                return r.status == 0 && r.output.contains("healthy")
            }
            await env.broker.stop()
            try await eventually("health to say the broker is gone", timeout: .seconds(20)) {
                let r = try run([BridgeProcess.executable, "health", "--config", b.configURL.path])
                return r.status == 1 && r.output.contains("MQTT")
            }
            try await env.broker.start()
            await b.stop()
            let r = try run([BridgeProcess.executable, "health", "--config", b.configURL.path])
            #expect(r.status == 1)
            env.bridge = nil
        }
    }

    @Test("SIGKILL: the broker publishes the offline will")
    func will() async throws {
        try await withEnvironment { env in
            let b = try await env.startBridge()
            b.child.signal(SIGKILL)
            try await env.observer.waitFor(env.stateTopic, timeout: .seconds(10)) { $0.payload == "offline" }
            env.bridge = nil
        }
    }

    @Test(
        "at start-up, retained statuses this bridge left for gone containers are cleared; another bridge's are not",
        arguments: MQTTVersion.allCases)
    func staleRetainedCleared(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let mine = "\(env.docker.prefix)-gone"
            let theirs = "\(env.docker.prefix)-elsewhere"
            try MQTT.publish(
                broker: env.broker, topic: env.topic(mine, "status"),
                payload: #"{"status":"running","bridge":"\#(env.bridgeID)","updated":"2026-01-01T00:00:00Z"}"#, retain: true)
            try MQTT.publish(
                broker: env.broker, topic: env.topic(theirs, "status"),
                payload: #"{"status":"running","bridge":"another-host","updated":"2026-01-01T00:00:00Z"}"#, retain: true)
            let live = try env.docker.run("live")
            #expect(try await env.retainedStatus(mine) == "running", "the stale status is there before the bridge starts")
            try await env.startBridge()
            try await env.waitForStatus(live, "running")
            try await eventually("the stale status to be cleared") { try await env.retainedStatus(mine) == nil }
            #expect(try await env.retainedStatus(theirs) == "running", "another bridge's retained status is left alone")
            try MQTT.publish(broker: env.broker, topic: env.topic(theirs, "status"), payload: "", retain: true)
        }
    }

    @Test("--version prints the version; check-config accepts the example configuration")
    func commandLine() throws {
        let v = try run([BridgeProcess.executable, "--version"])
        #expect(v.status == 0)
        // Exactly the version the sources declare, in MAJOR.MINOR.PATCH form.
        let declared = try BridgeProcess.sourceVersion()
        #expect(
            declared.wholeMatch(of: #/[0-9]+\.[0-9]+\.[0-9]+/#) != nil, "bridgeVersion '\(declared)' is not MAJOR.MINOR.PATCH")
        #expect(v.output.trimmingCharacters(in: .whitespacesAndNewlines) == declared, "--version printed '\(v.output)'")
        let c = try run([
            BridgeProcess.executable, "check-config", "--config",
            repositoryRoot.appendingPathComponent("config/idlewatcher-bridge.yaml").path,
        ])
        #expect(c.status == 0, "\(c.output)")
    }
}
