import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import Testing

/// The bridge executable on a Proxmox simulator and a real broker, driven with
/// `mosquitto_pub`/`mosquitto_rr` as a user would.
struct ProxmoxBridge {
    let sim: PVESimulator
    let broker: MosquittoBroker
    let observer: MQTTObserver
    let bridge: BridgeProcess
    let bridgeID: String

    enum Setup: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// HTTPS as Proxmox serves it (its CA trusted, or verification off with a ticket login), and
        /// plain HTTP: what a user gets behind a TLS-terminating reverse proxy on localhost.
        case httpsTrustedCAWithToken, httpsInsecureWithTicket, plainHTTPWithToken
        var testDescription: String { rawValue }
    }

    static func start(
        _ sim: PVESimulator, setup: Setup, badSecret: Bool = false, entry: String = "", homeAssistant: Bool = false,
        extra: String = ""
    ) async throws -> ProxmoxBridge {
        let bridgeID = "pve\(UUID().uuidString.prefix(6).lowercased())"
        let broker = try await MosquittoBroker()
        let observer = try MQTTObserver(broker: broker)
        try await observer.ready(broker: broker)
        let secretFile = sim.directory + "/secret"
        try (badSecret ? "not-\(sim.secret)" : sim.secret).write(toFile: secretFile, atomically: true, encoding: .utf8)
        let passwordFile = sim.directory + "/password"
        try PVESimulator.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let credentials: String
        var tls = ""
        switch setup {
        case .httpsTrustedCAWithToken, .plainHTTPWithToken:
            credentials = "token_id: \"\(PVESimulator.tokenID)\"\n    token_secret_file: \(secretFile)"
            if let ca = sim.caFile { tls = "ca_file: \(ca)" }
        case .httpsInsecureWithTicket:
            credentials = "username: root\n    realm: pam\n    password_file: \(passwordFile)"
            tls = "insecure_skip_verify: true"
        }
        let yaml = """
            bridge:
              id: \(bridgeID)
            mqtt:
              url: \(broker.url)
              client_id: iw-\(bridgeID)
            proxmox:
              - url: \(sim.url)
                \(credentials)
                \(tls)
                poll_interval: 300ms
                \(entry)
            defaults:
              stop_timeout: 2s
            homeassistant:
              enabled: \(homeAssistant)
            \(extra)
            """
        let bridge = try BridgeProcess(yaml: yaml, bridgeID: bridgeID)
        let env = ProxmoxBridge(sim: sim, broker: broker, observer: observer, bridge: bridge, bridgeID: bridgeID)
        try await eventually("the bridge to say online; log:\n\(bridge.log.suffix(3000))", timeout: .seconds(20)) {
            env.observer.messages(on: "idlewatcher/bridge/\(bridgeID)/state").contains { $0.payload == "online" }
        }
        return env
    }

    func topic(_ id: String, _ leaf: String) -> String { "idlewatcher/proxmox/\(id)/\(leaf)" }

    /// Sends a command with a fresh request id and waits for its reply.
    func command(_ id: String, _ json: [String: Any], timeout: Duration = .seconds(20)) async throws -> ObservedMessage {
        var body = json
        let rid = "r-\(UUID().uuidString.prefix(8))"
        body["request_id"] = rid
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        try MQTT.publish(broker: broker, topic: topic(id, "command"), payload: String(decoding: data, as: UTF8.self))
        return try await observer.waitFor(topic(id, "reply"), timeout: timeout) { $0.string("request_id") == rid }
    }

    func waitForStatus(_ id: String, _ status: String) async throws {
        try await eventually("status \(status) of \(id); saw \(observer.messages(on: topic(id, "status")).map(\.payload))") {
            self.observer.messages(on: self.topic(id, "status")).last?.string("status") == status
        }
    }

    func stop() async {
        await bridge.stop()
        await observer.stop()
        await broker.stop()
    }
}

/// Runs `body` with the bridge on a fresh simulator (`cts` CTs on `nodes`, `simulator`: more
/// options for it; `entry`: more keys for the bridge's `proxmox:` entry); always stops everything.
func withBridge(
    _ setup: ProxmoxBridge.Setup, badSecret: Bool = false, cts: Int = 3, nodes: [String] = ["pve1"],
    simulator: [String] = [], entry: String = "", homeAssistant: Bool = false, _ body: (ProxmoxBridge) async throws -> Void
) async throws {
    let transport: PVESimulator.Transport = setup == .plainHTTPWithToken ? .http : .https
    try await withSimulator(transport, cts: cts, nodes: nodes, extra: simulator) { sim in
        let env = try await ProxmoxBridge.start(
            sim, setup: setup, badSecret: badSecret, entry: entry, homeAssistant: homeAssistant)
        do {
            try await body(env)
        } catch {
            print("--- bridge log ---\n\(env.bridge.log.suffix(6000))")
            await env.stop()
            throw error
        }
        await env.stop()
    }
}

extension ProxmoxProviderTests {
    @Suite struct ThroughMQTT {
        @Test(arguments: ProxmoxBridge.Setup.allCases)
        func everyCommandWorksEndToEnd(_ setup: ProxmoxBridge.Setup) async throws {
            try await withBridge(setup) { env in
                try await env.sim.change(101, ["status": "stopped"])
                try await env.waitForStatus("101", "stopped")
                try await env.waitForStatus("100", "running")

                // The way docs/proxmox.md wakes a CT.
                try MQTT.publish(broker: env.broker, topic: env.topic("101", "command"), payload: "wake")
                let woke = try await env.observer.waitFor(env.topic("101", "reply"))
                #expect(woke.json?["ok"] as? Bool == true, "\(woke.payload)")
                #expect(woke.string("status") == "running" && woke.string("runtime") == "proxmox")
                try await env.waitForStatus("101", "running")
                let start = try await env.observer.waitFor(env.topic("101", "event")) { $0.string("action") == "start" }
                #expect(start.string("ref") == "pve1/101" && start.string("status") == "running")

                // Every command, on every setup (transport and auth change what can go wrong).
                let steps: [(action: String, extra: [String: Any], status: String)] = [
                    ("pause", [:], "paused"), ("wake", [:], "running"), ("stop", ["timeout": 1], "stopped"),
                    ("start", [:], "running"), ("pause", [:], "paused"), ("unpause", [:], "running"), ("kill", [:], "stopped"),
                    ("restart", ["timeout": 1], "running"), ("status", [:], "running"),
                ]
                for step in steps {
                    let reply = try await env.command("100", ["action": step.action].merging(step.extra) { a, _ in a })
                    #expect(reply.json?["ok"] as? Bool == true, "\(step.action): \(reply.payload)")
                    #expect(reply.string("status") == step.status, "\(step.action): \(reply.payload)")
                }
                try await env.waitForStatus("100", "running")
                let events = env.observer.messages(on: env.topic("100", "event")).compactMap { $0.string("action") }
                let expected = ["pause", "unpause", "stop", "start", "pause", "unpause", "stop", "start"]
                #expect(events == expected, "\(events)")
                for secret in [env.sim.secret, PVESimulator.password, "PVE:root@pam:"] {
                    #expect(!env.bridge.log.contains(secret), "a secret is in the bridge's log")
                }

                // A refusal carries Proxmox's words; a signal does not apply to Proxmox.
                try await env.sim.change(102, ["fail_suspend": true])
                let pause = try await env.command("102", ["action": "pause"])
                #expect((pause.json?["error"] as? [String: Any])?["code"] as? String == "runtime_error", "\(pause.payload)")
                #expect(pause.payload.contains("lxc-checkpoint -n 102"), "\(pause.payload)")
                let signal = try await env.command("102", ["action": "stop", "signal": "SIGTERM"])
                #expect((signal.json?["error"] as? [String: Any])?["code"] as? String == "bad_request", "\(signal.payload)")

                // Outside changes, a CT created and one destroyed.
                try await env.sim.change(102, ["status": "stopped"])
                try await env.waitForStatus("102", "stopped")
                try await env.sim.sim("POST", "/ct", ["vmid": 200, "status": "running"])
                try await env.waitForStatus("200", "running")
                try await env.sim.sim("DELETE", "/ct/200")
                try await eventually("the retained status of 200 to be cleared") {
                    env.observer.messages(on: env.topic("200", "status")).last?.payload == ""
                }
                let missing = try await env.command("999", ["action": "start"])
                #expect((missing.json?["error"] as? [String: Any])?["code"] as? String == "not_found", "\(missing.payload)")

                for secret in [env.sim.secret, PVESimulator.password, "PVE:root@pam:"] {
                    #expect(!env.bridge.log.contains(secret), "a secret is in the bridge's log")
                }
            }
        }

        @Test func aBadTokenAnswersUnavailableAndLeaksNoSecret() async throws {
            try await withBridge(.httpsTrustedCAWithToken, badSecret: true) { env in
                try await eventually("the bridge to log the authentication failure") {
                    env.bridge.log.contains("authentication failed: check token_id and the token secret")
                }
                let reply = try await env.command("101", ["action": "wake"])
                let error = reply.json?["error"] as? [String: Any]
                #expect(error?["code"] as? String == "unavailable", "\(reply.payload)")
                #expect(
                    (error?["message"] as? String)?.contains("authentication failed: check token_id and the token secret") == true
                )
                #expect(!reply.payload.contains(env.sim.secret))
                #expect(!env.bridge.log.contains(env.sim.secret), "the secret is in the bridge's log")
                #expect(try await env.sim.ct(101)["status"] as? String == "running")
            }
        }
    }
}
