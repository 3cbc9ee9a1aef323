import Foundation
import IdlewatcherTesting
import Testing

/// docs/multi-host.md run as written: its ACL on a real mosquitto with a password file, a
/// bridge of the NAS example behind it, and Home Assistant asking with `mosquitto_rr`.
@Suite("docs/multi-host.md")
struct MultiHostDocsTests {
    /// The first code block after `heading` in a document of docs/.
    static func codeBlock(in document: String, after heading: String) throws -> String {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/\(document)"), encoding: .utf8)
        guard let h = text.range(of: heading), let open = text.range(of: "```\n", range: h.upperBound..<text.endIndex),
            let close = text.range(of: "\n```", range: open.upperBound..<text.endIndex)
        else { throw TestSupportError("no code block after '\(heading)' in docs/\(document)") }
        return String(text[open.upperBound..<close.lowerBound])
    }

    @Test(
        "the documented ACL: mosquitto_rr -u homeassistant -e reply/me gets its reply, the bridge's own reply topic works, nothing of the bridge is refused; without `write reply/#` the refusal is logged as documented"
    )
    func documentedACL() async throws {
        let documented = try Self.codeBlock(in: "multi-host.md", after: "## The broker's ACL")
        #expect(documented.contains("user bridge-nas") && documented.contains("user homeassistant"))
        let dir = try makeTemporaryDirectory("multihost-acl")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let passwd = dir.appendingPathComponent("passwd").path
        let acl = dir.appendingPathComponent("acl").path
        var passwords: [String: String] = [:]
        for (n, user) in ["bridge-nas", "homeassistant"].enumerated() {
            passwords[user] = "pw-\(user)-\(UUID().uuidString.prefix(8))"
            let r = try run(["mosquitto_passwd"] + (n == 0 ? ["-c"] : []) + ["-b", passwd, user, passwords[user]!])
            #expect(r.status == 0, "\(r.output)")
        }
        // Test only, before any `user` line: the anonymous observer may read everything.
        func writeACL(_ body: String) throws {
            try ("topic read #\ntopic readwrite iwtest/#\n\n" + body + "\n").write(toFile: acl, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: acl)
        }
        try writeACL(documented)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: passwd)
        let passwordFile = dir.appendingPathComponent("bridge-password").path
        try (passwords["bridge-nas"]! + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)

        let broker = try await MosquittoBroker(extraConfig: "password_file \(passwd)\nacl_file \(acl)")
        let observer = try MQTTObserver(broker: broker, topics: ["#"])
        try await observer.ready(broker: broker)
        let docker = try await DockerFixture()
        defer { docker.cleanUp() }
        let name = try docker.run("jellyfin")
        let id = "nas-\(name)"
        let yaml = """
            bridge: {id: nas}
            mqtt:
              url: \(broker.url)
              client_id: iw-nas-\(UUID().uuidString.prefix(4))
              username: bridge-nas
              password_file: \(passwordFile)
            docker:
              - url: unix:///var/run/docker.sock
                id_prefix: "nas-"
                include: [\(name)]
            homeassistant:
              enabled: true
            """
        let b = try BridgeProcess(yaml: yaml, bridgeID: "nas")
        let homeassistant = ["-p", "\(broker.port)", "-u", "homeassistant", "-P", passwords["homeassistant"]!]
        do {
            try await observer.waitFor("idlewatcher/bridge/nas/state", timeout: .seconds(20)) { $0.payload == "online" }
            try await observer.waitFor("idlewatcher/docker/\(id)/status") { $0.string("status") == "running" }
            try await eventually("Home Assistant discovery under homeassistant/+/idlewatcher_nas/") {
                observer.messages.contains {
                    $0.topic.hasPrefix("homeassistant/") && $0.topic.contains("/idlewatcher_nas/") && !$0.payload.isEmpty
                }
            }

            // As the document says: a Response Topic under reply/, and the bridge's own reply topic.
            for responseTopic in ["reply/me", "idlewatcher/docker/\(id)/reply"] {
                let (rc, out) = try run(
                    ["mosquitto_rr", "-t", "idlewatcher/docker/\(id)/command", "-e", responseTopic, "-m", "status", "-W", "20"]
                        + homeassistant)
                #expect(rc == 0, "mosquitto_rr -e \(responseTopic): \(out)")
                let reply = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any]
                #expect(reply?["ok"] as? Bool == true && reply?["status"] as? String == "running", "\(out)")
            }
            #expect(
                !b.log.contains("the MQTT broker refused a message"), "the documented ACL refused the bridge something:\n\(b.log)"
            )

            // Without `topic write reply/#` the bridge may not answer there: the broker drops the
            // reply, and the bridge says so in the words the document shows.
            try writeACL(documented.replacingOccurrences(of: "topic write reply/#\n", with: ""))
            broker.reload()
            let example = try await eventually("the refusal in the log, as documented", every: .milliseconds(300)) {
                () -> String? in
                try MQTT.publish(
                    broker: broker, topic: "idlewatcher/docker/\(id)/command", payload: "status",
                    extra: ["-V", "mqttv5", "-D", "publish", "response-topic", "reply/me"] + Array(homeassistant.dropFirst(2)))
                return b.log.split(separator: "\n").first { $0.contains("the MQTT broker refused a message on reply/me") }.map(
                    String.init)
            }
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/multi-host.md"), encoding: .utf8)
            let documentedLine = try #require(
                text.split(separator: "\n").first { $0.hasPrefix("the MQTT broker refused a message on reply/me") })
            #expect(example.hasSuffix(String(documentedLine)), "the log:\n\(example)\nthe document:\n\(documentedLine)")
            #expect(await b.stop() == 0)
        } catch {
            print("--- bridge log ---\n\(b.log.suffix(4000))")
            await b.stop()
            await observer.stop()
            await broker.stop()
            throw error
        }
        await observer.stop()
        await broker.stop()
    }

    @Test(
        "a bridge that stops answering is offline after 1.5 × keepalive (plus mosquitto's check interval), not after one keepalive"
    )
    func offlineAfterOneAndAHalfKeepalives() async throws {
        try await withEnvironment { env in
            let b = try await env.startBridge(dockerExtra: "    include: [none]", mqttExtra: "  keepalive: 5s")
            // Its last word right now: a reply. The broker's keepalive clock starts there.
            try env.send("nobody", #"{"action":"status","request_id":"last"}"#)
            try await env.observer.waitFor(env.topic("nobody", "reply")) { $0.string("request_id") == "last" }
            b.child.signal(SIGSTOP)  // frozen: the process and its connection are there, but it says nothing
            defer { b.child.signal(SIGCONT) }
            let frozen = ContinuousClock.now
            try await env.observer.waitFor(env.stateTopic, timeout: .seconds(20)) { $0.payload == "offline" }
            let after = ContinuousClock.now - frozen
            print("offline \(after) after the bridge froze (keepalive 5 s)")
            // mosquitto 2.0 counts whole seconds (more than 5 × 3 / 2 = 7 of silence) and looks
            // every 6 s at most (src/keepalive.c, `last_keepalive_check + 5 < now`): about 7 to
            // 15 s here. Not within one keepalive (5 s), as the document used to say.
            #expect(after > .seconds(6), "offline after \(after): sooner than 1.5 × keepalive")
            #expect(after < .seconds(16), "offline after \(after): later than 1.5 × keepalive and one check interval")
        }
    }
}
