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
