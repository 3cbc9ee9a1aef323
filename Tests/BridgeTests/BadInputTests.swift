import Foundation
import IdlewatcherTesting
import Testing

/// Malformed commands get the contract's answer; no container is touched; the bridge keeps serving.
@Suite("Bad input")
struct BadInputTests {
    struct Case: Sendable, CustomStringConvertible {
        var payload: String
        var code: String
        var requestID: String?
        var description: String { "\(code): \(payload.prefix(60))" }
    }

    static let cases: [Case] = [
        Case(payload: #"{"action":"stop""#, code: "bad_request"),
        Case(payload: "stpo", code: "unknown_action"),
        Case(payload: #"{"action":"reboot","request_id":"a1"}"#, code: "unknown_action", requestID: "a1"),
        Case(payload: #"{"action":"stop","timeout":"10","request_id":"a2"}"#, code: "bad_request", requestID: "a2"),
        Case(payload: #"{"action":"stop","timeout":3601,"request_id":"a3"}"#, code: "bad_request", requestID: "a3"),
        Case(payload: #"{"action":"stop","timeout":-1}"#, code: "bad_request"),
        Case(payload: #"{"action":"stop","timeout":1.5}"#, code: "bad_request"),
        Case(payload: #"{"action":"kill","signal":"SIGFOO","request_id":"a4"}"#, code: "bad_request", requestID: "a4"),
        Case(payload: #"{"action":"kill","signal":65}"#, code: "bad_request"),
        Case(payload: #"{"action":"pause","signal":"TERM"}"#, code: "bad_request"),
        Case(payload: #"{"action":"start","timeout":5}"#, code: "bad_request"),
        Case(payload: #"{"action":"stop","force":true,"request_id":"a5"}"#, code: "bad_request", requestID: "a5"),
        Case(payload: #"{"action":42}"#, code: "bad_request"),
        Case(payload: #"["stop"]"#, code: "bad_request"),
        Case(payload: #"{"action":"stop","request_id":7}"#, code: "bad_request"),
        Case(payload: "{\"action\":\"stop\",\"request_id\":\"" + String(repeating: "x", count: 129) + "\"}", code: "bad_request"),
        Case(payload: #"{"action":"stop","pad":""# + String(repeating: "x", count: 5000) + "\"}", code: "bad_request"),
        Case(payload: String(repeating: "[", count: 2000), code: "bad_request"),
    ]

    @Test("each malformed command gets its error code, the container is untouched, and the bridge keeps serving")
    func malformed() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("victim")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let startedAt = env.docker.startedAt(name)
            for (n, c) in Self.cases.enumerated() {
                try env.send(name, c.payload)
                let replies = try await eventually("reply #\(n + 1) for \(c)") {
                    let r = env.observer.messages(on: env.topic(name, "reply"))
                    return r.count > n ? r : nil
                }
                let reply = replies[n]
                let error = reply.json?["error"] as? [String: Any]
                #expect(reply.json?["ok"] as? Bool == false, "\(c)")
                #expect(error?["code"] as? String == c.code, "\(c) → \(reply.payload)")
                #expect((error?["message"] as? String)?.isEmpty == false)
                #expect(reply.string("status") == "running", "the live status is reported: \(reply.payload)")
                if let rid = c.requestID { #expect(reply.string("request_id") == rid) }
                #expect(reply.string("runtime") == "docker")
                #expect(reply.string("id") == name)
            }
            #expect(env.docker.state(name) == "running")
            #expect(env.docker.startedAt(name) == startedAt, "no invalid command touched the container")
            #expect(env.eventActions(name).filter { $0 != "start" && $0 != "create" }.isEmpty)
            // Still serving.
            let ok = try await env.command(name, ["action": "status"])
            #expect(ok.json?["ok"] as? Bool == true)
        }
    }

    @Test("an unknown container in the namespace is not_found; other namespaces are ignored")
    func unknownContainer() async throws {
        try await withEnvironment { env in
            try await env.startBridge(dockerExtra: "    id_prefix: \"nas-\"")
            try env.send("nas-no-such-container", #"{"action":"wake","request_id":"nf"}"#)
            let r = try await env.observer.waitFor(env.topic("nas-no-such-container", "reply"))
            #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_found")
            #expect(r.json?["status"] is NSNull)
            #expect(r.string("request_id") == "nf")

            try env.send("other-host-web", "wake")
            try env.send("nas-no-such-container", "status")  // a marker that comes after it
            try await eventually("the marker reply") {
                env.observer.messages(on: env.topic("nas-no-such-container", "reply")).count == 2
            }
            #expect(
                env.observer.messages(on: env.topic("other-host-web", "reply")).isEmpty, "ids outside the namespace are ignored")
        }
    }

    @Test(
        "a retained command is never executed (MQTT 3.1.1: none retained when the bridge subscribes; a live one cannot be told, as documented)",
        arguments: MQTTVersion.allCases)
    func retainedCommand(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("ret")
            let warning = "ignored a retained command on \(env.topic(name, "command"))"
            func warnings(_ b: BridgeProcess) -> Int { b.log.components(separatedBy: warning).count - 1 }
            func replies() -> [ObservedMessage] { env.observer.messages(on: env.topic(name, "reply")) }

            // Retained before the bridge subscribes. MQTT 5: retain handling "do not send" keeps
            // it from the bridge; 3.1.1: it arrives flagged and is dropped with a warning.
            try env.send(name, "pause", retain: true)
            let first = try await env.startBridge()
            try await env.waitForStatus(name, "running")
            // The marker comes after anything the broker sends at subscribe time.
            let marker = try await env.command(name, ["action": "status"])
            #expect(marker.string("status") == "running")
            #expect(warnings(first) == (mqtt == .v5 ? 0 : 1), "\(first.log.suffix(3000))")
            #expect(replies().count == 1, "only the marker was answered: \(replies())")
            #expect(!env.eventActions(name).contains("pause"))

            // Retained while the bridge runs.
            try env.send(name, "kill", retain: true)
            switch mqtt {
            case .v5:
                // "Retain as published": it arrives flagged and is dropped with a warning.
                try await eventually("the warning in the log") { warnings(first) == 1 }
                let second = try await env.command(name, ["action": "status"])
                #expect(second.string("status") == "running")
                #expect(env.docker.state(name) == "running")
                #expect(replies().count == 2, "only the markers were answered: \(replies())")
            case .v311:
                // docs/mqtt-api.md: on 3.1.1 the broker clears the retain flag of a live message,
                // so the bridge cannot tell it from a plain command, and runs it.
                let kill = try await env.observer.waitFor(env.topic(name, "reply")) { $0.string("action") == "kill" }
                #expect(kill.json?["ok"] as? Bool == true, "\(kill.payload)")
                #expect(env.docker.state(name) == "exited")
            }

            // The kill stays retained on the broker: a bridge subscribing again (restarted) runs
            // it no more than any other retained command (3.1.1: it arrives flagged now).
            let answered = replies().count
            await first.stop()
            env.bridge = nil
            let statuses = env.observer.messages(on: env.topic(name, "status")).count
            let restarted = try await env.startBridge()
            // Its resync (a fresh status) says it knows the container: a command now is not
            // answered `unavailable` for a runtime it has not reached yet.
            try await eventually("the restarted bridge's resync") {
                env.observer.messages(on: env.topic(name, "status")).count > statuses
            }
            let last = try await env.command(name, ["action": "status"])
            #expect(last.string("status") == (mqtt == .v5 ? "running" : "stopped"), "\(last.payload)")
            #expect(replies().count == answered + 1, "only the marker was answered: \(replies())")
            #expect(warnings(restarted) == (mqtt == .v5 ? 0 : 1), "\(restarted.log.suffix(3000))")
            #expect(env.docker.state(name) == (mqtt == .v5 ? "running" : "exited"))
            try env.send(name, "", retain: true)  // clear the retained command from the broker
        }
    }

    @Test("actions a label or the defaults do not allow are not_allowed")
    func notAllowed() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("narrow", labels: ["idlewatcher.allow": "start,wake,status"])
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let r = try await env.command(name, ["action": "kill"])
            #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_allowed")
            #expect(((r.json?["error"] as? [String: Any])?["message"] as? String)?.contains("start, wake, status") == true)
            #expect(env.docker.state(name) == "running")
            let s = try await env.command(name, ["action": "wake"])
            #expect(s.json?["ok"] as? Bool == true)
        }
    }
}
