import Foundation
import IdlewatcherTesting
import Testing

/// include, exclude and labels decide what the bridge exposes, everywhere.
@Suite("What the bridge exposes")
struct ExposureTests {
    @Test("include, exclude and idlewatcher.enable=false hide containers from statuses, events and commands")
    func includeExclude() async throws {
        try await withEnvironment { env in
            let shown = try env.docker.run("shown")
            let excluded = try env.docker.run("excluded")
            let disabled = try env.docker.run("disabled", labels: ["idlewatcher.enable": "false"])
            let notIncluded = try env.docker.run("notincluded")
            try await env.startBridge(
                dockerExtra: """
                        include: [\(shown), \(excluded), \(disabled)]
                        exclude: [\(excluded)]
                    """)
            try await env.waitForStatus(shown, "running")
            for hidden in [excluded, disabled, notIncluded] {
                let r = try await env.command(hidden, ["action": "stop"])
                #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_found", "\(hidden): \(r.payload)")
                #expect(env.docker.state(hidden) == "running")
            }
            try env.docker.cli("pause", excluded, disabled, notIncluded, shown)
            try await env.waitForStatus(shown, "paused")
            for hidden in [excluded, disabled, notIncluded] {
                #expect(env.observer.messages(on: env.topic(hidden, "status")).isEmpty)
                #expect(env.observer.messages(on: env.topic(hidden, "event")).isEmpty)
            }
        }
    }

    @Test(
        "hidden containers get no Home Assistant discovery; protected ones are watched but only status is allowed, and get no controls"
    )
    func discoveryAndProtected() async throws {
        try await withEnvironment { env in
            let shown = try env.docker.run("shown")
            let excluded = try env.docker.run("excluded")
            let disabled = try env.docker.run("disabled", labels: ["idlewatcher.enable": "false"])
            let guarded = try env.docker.run("guarded")
            try await env.startBridge(
                dockerExtra: """
                        include: [\(shown), \(excluded), \(disabled), \(guarded)]
                        exclude: [\(excluded)]
                        protected: [\(guarded)]
                    """, extra: "homeassistant:\n  enabled: true")
            let node = "idlewatcher_\(env.bridgeID)"
            func configs(_ name: String) -> [String] {
                var live: [String: Bool] = [:]
                for m in env.observer.messages
                where m.topic.hasPrefix("homeassistant/") && m.topic.contains("/\(node)/") && m.topic.contains(name) {
                    live[m.topic] = !m.payload.isEmpty
                }
                return live.filter(\.value).keys.map { String($0.split(separator: "/")[1]) }.sorted()
            }
            try await eventually("discovery for the shown and the protected container") {
                configs(shown).contains("switch") && configs(guarded).contains("sensor")
            }
            try await env.waitForStatus(guarded, "running")
            // A marker: once the shown container's pause is published, everything before it was too.
            try env.docker.cli("pause", excluded, disabled, shown)
            try await env.waitForStatus(shown, "paused")
            for hidden in [excluded, disabled] {
                #expect(configs(hidden).isEmpty, "\(hidden) has discovery: \(configs(hidden))")
            }
            #expect(configs(guarded) == ["sensor"], "a protected container gets its status sensor and no controls")
            for action in ["stop", "kill", "pause", "restart", "start", "wake"] {
                let r = try await env.command(guarded, ["action": action])
                #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_allowed", "\(action): \(r.payload)")
            }
            let s = try await env.command(guarded, ["action": "status"])
            #expect(s.json?["ok"] as? Bool == true)
            try env.docker.cli("pause", guarded)
            try await env.waitForStatus(guarded, "paused")  // watched all the same
            #expect(env.eventActions(guarded) == ["pause"])
        }
    }

    @Test("idlewatcher.stop_timeout sets how long a stop waits before it kills")
    func stopTimeoutLabel() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("quick", labels: ["idlewatcher.stop_timeout": "1s"])
            try await env.startBridge(extra: "defaults:\n  stop_timeout: 30s")
            try await env.waitForStatus(name, "running")
            let r = try await env.command(name, ["action": "stop"])
            let ms = r.json?["duration_ms"] as? Int ?? 0
            #expect(r.string("status") == "stopped")
            #expect(ms >= 900 && ms < 20_000, "stopped after the label's 1s, not the default 30s: \(ms) ms")
        }
    }
}
