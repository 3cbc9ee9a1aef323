import Foundation
import IdlewatcherTesting
import Testing

/// Inside the base topic, a command's Response Topic is accepted only if it is the command's
/// own reply topic: a command to one container cannot make the bridge answer on another's.
@Suite("Response Topics inside the base topic")
struct ResponseTopicTests {
    @Test("a Response Topic naming another container's reply topic is refused: the reply goes to the command's own")
    func anotherContainersReplyTopic() async throws {
        try await withEnvironment { env in
            let demo = try env.docker.run("demo")
            let web = try env.docker.run("web")
            let b = try await env.startBridge()
            try await env.waitForStatus(demo, "running")
            let v5 = ["-V", "mqttv5", "-D", "publish", "response-topic"]
            try env.send(demo, #"{"action":"status","request_id":"wrong"}"#, extra: v5 + [env.topic(web, "reply")])
            try env.send(demo, #"{"action":"status","request_id":"own"}"#, extra: v5 + [env.topic(demo, "reply")])
            try env.send(demo, #"{"action":"status","request_id":"outside"}"#, extra: v5 + ["answers/me"])
            let wrong = try await env.observer.waitFor(env.topic(demo, "reply")) { $0.string("request_id") == "wrong" }
            #expect(wrong.json?["ok"] as? Bool == true)
            try await env.observer.waitFor(env.topic(demo, "reply")) { $0.string("request_id") == "own" }
            try await env.observer.waitFor("answers/me") { $0.string("request_id") == "outside" }
            #expect(env.observer.messages(on: env.topic(web, "reply")).isEmpty, "answered on another container's reply topic")
            #expect(b.log.contains("is not accepted (inside idlewatcher/ only the command's own reply topic is)"))
        }
    }
}
