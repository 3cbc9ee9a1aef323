import Foundation
import IdlewatcherTesting
import Testing

/// Containers changed by someone else (the docker CLI): the right events, in order, and true statuses.
@Suite("Changes made outside the bridge")
struct OutsideChangesTests {
    @Test(
        "create, start, pause, unpause, kill -s HUP, stop, rm: events in order, statuses true, retained status cleared",
        arguments: MQTTVersion.allCases)
    func fullLifecycle(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            try await env.startBridge()
            let name = try env.docker.runQuickStopper("ext", start: false)
            try await env.waitForStatus(name, "stopped")
            try env.docker.cli("start", name)
            try await env.waitForStatus(name, "running")
            try env.docker.cli("pause", name)
            try await env.waitForStatus(name, "paused")
            try env.docker.cli("unpause", name)
            try await env.waitForStatus(name, "running")
            try env.docker.cli("kill", "-s", "HUP", name)
            try await eventually("the kill event") { env.eventActions(name).contains("kill") }
            #expect(env.docker.state(name) == "running")
            try env.docker.cli("stop", "-t", "1", name)
            try await env.waitForStatus(name, "stopped")
            try env.docker.cli("rm", name)
            try await eventually("the destroy event") { env.eventActions(name).contains("destroy") }

            let events = env.observer.messages(on: env.topic(name, "event"))
            let actions = events.compactMap { $0.string("action") }
            #expect(actions.first == "create")
            let expectedOrder = ["create", "start", "pause", "unpause", "kill", "kill", "die", "stop", "destroy"]
            #expect(actions == expectedOrder, "\(actions)")
            // Each event's status is the container's status right after it.
            let pairs = events.map { ($0.string("action")!, $0.string("status")!) }
            #expect(pairs.first { $0.0 == "pause" }?.1 == "paused")
            #expect(pairs.first { $0.0 == "unpause" }?.1 == "running")
            #expect(pairs.first { $0.0 == "kill" }?.1 == "running", "a SIGHUP leaves it running")
            #expect(pairs.first { $0.0 == "die" }?.1 == "stopped")
            // Times are RFC 3339 UTC with fractional seconds, from Docker's timeNano, in order.
            let times = events.compactMap { $0.string("time") }
            #expect(times.allSatisfy { $0.hasSuffix("Z") && $0.contains(".") && $0.count >= 24 })
            #expect(times == times.sorted())
            let kill = events.first { $0.string("action") == "kill" }
            #expect((kill?.json?["attributes"] as? [String: String])?["signal"] == "1")

            try await eventually("the retained status to be cleared") {
                env.observer.messages(on: env.topic(name, "status")).last?.payload == ""
            }
            #expect(try await env.retainedStatus(name) == nil)
        }
    }

    @Test("labels are not passed on as event attributes")
    func labelsNotInAttributes() async throws {
        try await withEnvironment { env in
            try await env.startBridge()
            let name = try env.docker.run(
                "lbl", labels: ["com.example.team": "media", "idlewatcher.allow": "start,wake,status,pause"])
            let e = try await env.observer.waitFor(env.topic(name, "event")) { $0.string("action") == "start" }
            let attributes = e.json?["attributes"] as? [String: String] ?? [:]
            #expect(attributes["name"] == name)
            #expect(attributes["com.example.team"] == nil)
            #expect(attributes["idlewatcher.allow"] == nil)
        }
    }
}
