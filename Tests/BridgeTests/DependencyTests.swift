import Foundation
import IdlewatcherTesting
import Testing

/// Dependencies (contract v1.1): waking a container wakes what it depends on first, on this
/// bridge or on another one on the same broker; a running container holds a lease on each.
@Suite("Dependencies across bridges")
struct DependencyTests {
    static func config(_ env: TestEnvironment, id: String, prefix: String, include: String, idle: String) -> String {
        """
        bridge:
          id: \(id)
        mqtt:
          url: \(env.broker.url)
        docker:
          - url: unix:///var/run/docker.sock
            id_prefix: "\(prefix)"
            include: [\(include)]
        homeassistant:
          enabled: false
        idle:
        \(idle)
        """
    }

    @Test(
        "an app on bridge A depending on a database on bridge B: waking the app wakes the database first; the database sleeps after the app stops, not while it runs"
    )
    func acrossBridges() async throws {
        try await withEnvironment { env in
            let db = try env.docker.runQuickStopper("db", start: false)
            let app = try env.docker.runQuickStopper("app", start: false)
            let a = try BridgeProcess(
                yaml: Self.config(
                    env, id: "hosta", prefix: "a-", include: app,
                    idle: "  containers:\n    docker/a-\(app): {depends_on: [docker/b-\(db)]}"),
                bridgeID: "hosta")
            let b = try BridgeProcess(
                yaml: Self.config(
                    env, id: "hostb", prefix: "b-", include: db, idle: "  containers:\n    docker/b-\(db): {timeout: 3s}"),
                bridgeID: "hostb")
            defer {
                a.child.signal(SIGKILL)
                b.child.signal(SIGKILL)
            }
            try await env.observer.waitFor("idlewatcher/bridge/hosta/state") { $0.payload == "online" }
            try await env.observer.waitFor("idlewatcher/bridge/hostb/state") { $0.payload == "online" }
            try await env.observer.waitFor("idlewatcher/docker/b-\(db)/status") { $0.string("status") == "stopped" }

            let reply = try MQTT.request(
                broker: env.broker, topic: "idlewatcher/docker/a-\(app)/command",
                responseTopic: "idlewatcher/docker/a-\(app)/reply",
                payload: "wake", timeout: 30)
            #expect(reply.contains(#""ok":true"#) && reply.contains(#""ready":true"#), "\(reply)\n\(a.log.suffix(3000))")
            #expect(env.docker.state(db) == "running")
            #expect(env.docker.state(app) == "running")
            let dbStarted = try #require(
                env.observer.messages(on: "idlewatcher/docker/b-\(db)/event").first { $0.string("action") == "start" })
            let appStarted = try #require(
                env.observer.messages(on: "idlewatcher/docker/a-\(app)/event").first { $0.string("action") == "start" })
            #expect(dbStarted.receivedAt <= appStarted.receivedAt, "the database must start before the app")
            // The wake went over MQTT to bridge B, with a Response Topic.
            #expect(env.observer.messages(on: "idlewatcher/docker/b-\(db)/reply").contains { $0.string("action") == "wake" })

            // While the app runs, the app's bridge holds a lease on the database: it stays up past its 3 s.
            try await eventually("the lease of the app on the database") {
                let holders =
                    env.observer.messages(on: "idlewatcher/docker/b-\(db)/idle").last?.json?["holders"] as? [[String: Any]]
                return holders?.contains { $0["holder"] as? String == "hosta:docker/a-\(app)" } == true
            }
            #expect(
                try await env.staysRunning(db, for: .seconds(6)),
                "the database slept while the app ran; B's log:\n\(b.log.suffix(4000))")

            // The app stops: the lease goes, and the database sleeps by its own timer.
            try MQTT.publish(broker: env.broker, topic: "idlewatcher/docker/a-\(app)/command", payload: "stop")
            try await env.observer.waitFor("idlewatcher/docker/a-\(app)/status", timeout: .seconds(20)) {
                $0.string("status") == "stopped"
            }
            let appStopped = Date().timeIntervalSince1970
            let dbStopped = try await env.observer.waitFor("idlewatcher/docker/b-\(db)/status", timeout: .seconds(20)) {
                $0.string("status") == "stopped" && $0.receivedAt > appStopped
            }.receivedAt
            #expect(
                dbStopped - appStopped >= 2.5,
                "the database slept \(dbStopped - appStopped) s after the app stopped; A:\n\(a.log.suffix(3000))\nB:\n\(b.log.suffix(5000))"
            )
        }
    }

    @Test("a dependency cycle across two bridges (each config fine alone) is refused at once, naming it; nothing starts")
    func cycleAcrossBridges() async throws {
        try await withEnvironment { env in
            let db = try env.docker.runQuickStopper("db", start: false)
            let app = try env.docker.runQuickStopper("app", start: false)
            let a = try BridgeProcess(
                yaml: Self.config(
                    env, id: "hosta", prefix: "a-", include: app,
                    idle: "  containers:\n    docker/a-\(app): {depends_on: [docker/b-\(db)]}"),
                bridgeID: "hosta")
            let b = try BridgeProcess(
                yaml: Self.config(
                    env, id: "hostb", prefix: "b-", include: db,
                    idle: "  containers:\n    docker/b-\(db): {depends_on: [docker/a-\(app)]}"),
                bridgeID: "hostb")
            defer {
                a.child.signal(SIGKILL)
                b.child.signal(SIGKILL)
            }
            try await env.observer.waitFor("idlewatcher/bridge/hosta/state") { $0.payload == "online" }
            try await env.observer.waitFor("idlewatcher/bridge/hostb/state") { $0.payload == "online" }
            try await env.observer.waitFor("idlewatcher/docker/b-\(db)/status") { $0.string("status") == "stopped" }
            try await env.observer.waitFor("idlewatcher/docker/a-\(app)/status") { $0.string("status") == "stopped" }

            let started = ContinuousClock.now
            try MQTT.publish(
                broker: env.broker, topic: "idlewatcher/docker/a-\(app)/command",
                payload: #"{"action":"wake","request_id":"cyc"}"#)
            let reply = try await env.observer.waitFor("idlewatcher/docker/a-\(app)/reply", timeout: .seconds(90)) {
                $0.string("request_id") == "cyc"
            }
            let error = reply.json?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "invalid_state", "\(reply.payload)")
            let message = error?["message"] as? String ?? ""
            #expect(
                message.contains("dependency cycle across bridges docker/a-\(app) → docker/b-\(db) → docker/a-\(app)"),
                "\(reply.payload)")
            // Not the wake timeout (60 s): the other bridge saw the cycle in the wake's request id.
            #expect(ContinuousClock.now - started < .seconds(30))
            #expect(env.docker.state(app) == "created" && env.docker.state(db) == "created", "nothing may start")
        }
    }

    @Test("a local dependency that cannot wake fails the wake of its dependent, which is left alone")
    func failingDependency() async throws {
        try await withEnvironment { env in
            let db = try env.docker.runQuickStopper("db", labels: ["idlewatcher.allow": "status"], start: false)
            let app = try env.docker.runQuickStopper("app", labels: ["idlewatcher.depends_on": "docker/\(db)"], start: false)
            try await env.startBridge()
            try await env.waitForStatus(app, "stopped")
            let reply = try await env.command(app, ["action": "wake"])
            let error = reply.json?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "not_allowed", "\(reply.payload)")
            #expect((error?["message"] as? String)?.contains("dependency docker/\(db)") == true, "\(reply.payload)")
            #expect(reply.json?["ready"] as? Bool == false)
            #expect(env.docker.state(app) == "created", "the app must not start without its dependency")
        }
    }
}
