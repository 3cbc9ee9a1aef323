import Foundation
import IdlewatcherTesting
import Testing

/// The bridge and its broker, against a real mosquitto: back soon after the broker restarts,
/// with the schedule the log announces; failures worded for what really failed; and nothing
/// the broker drops goes unsaid (an ACL refusal, events dropped while it was away).
@Suite("Broker connection")
struct BrokerConnectionTests {
    @Test(
        "broker away 8 s and back: the bridge is online again within 3 s of the broker listening, and the log announced that schedule"
    )
    func backSoonAfterBrokerRestart() async throws {
        try await withEnvironment { env in
            let b = try await env.startBridge(dockerExtra: "    include: [none]")
            await env.broker.stop()
            let outageEnds = ContinuousClock.now + .seconds(8)
            try await eventually("the loss in the log") {
                b.log.contains("lost the MQTT broker at \(env.broker.url); reconnecting in 0.2 s, the wait doubling up to 2 s")
            }
            try await eventually("a failed attempt in the log, with the next wait") {
                b.log.contains(
                    "cannot connect to the MQTT broker at \(env.broker.url): Connection refused; retrying in 0.4 s, the wait doubling up to 2 s"
                )
            }
            try await Task.sleep(until: outageEnds)  // the outage itself, not a synchronisation
            try await env.broker.start()
            let listening = ContinuousClock.now
            // The broker keeps nothing across the restart (no persistence): `online` is there
            // again only once the bridge has said it. A fresh subscriber gets it, retained.
            let watcher = try MQTTObserver(broker: env.broker, topics: [env.stateTopic])
            defer { Task { await watcher.stop() } }
            // With the former schedule (0.1 s doubling to 10 s) the attempt after an 8 s outage
            // came 12.7 s after the loss: 4.7 s after the broker was back.
            try await eventually("online within 3 s of the broker listening again", timeout: .seconds(3)) {
                watcher.messages(on: env.stateTopic).contains { $0.payload == "online" }
            }
            print("online again \(ContinuousClock.now - listening) after the broker listened")
        }
    }

    @Test("a refused connection to an mqtts:// broker says so, without TLS certificate hints (those are for TLS failures)")
    func refusedIsNotACertificateProblem() async throws {
        let port = freePort()
        let id = "t\(UUID().uuidString.prefix(6).lowercased())"
        let yaml = """
            bridge:
              id: \(id)
            mqtt:
              url: mqtts://127.0.0.1:\(port)
            docker:
              - url: unix:///var/run/docker.sock
                include: [none]
            homeassistant:
              enabled: false
            """
        let b = try BridgeProcess(yaml: yaml, bridgeID: id)
        defer { Task { await b.stop() } }
        let prefix = "cannot connect to the MQTT broker at mqtts://127.0.0.1:\(port): Connection refused"
        let line = try await eventually("the refusal in the log:\n\(b.log.suffix(2000))") {
            b.log.split(separator: "\n").first { $0.contains(prefix) }.map(String.init)
        }
        #expect(line.contains("; retrying in 0.2 s, the wait doubling up to 2 s"), "\(line)")
        for hint in ["certificate", "ca_file", "cert_file", "TLS"] {
            #expect(!line.contains(hint), "a refused port is not a TLS problem: \(line)")
        }
        #expect(b.child.isRunning)
    }

    @Test("a publish the broker's ACL refuses (MQTT 5 PUBACK 0x87) is logged once per topic, with the topic and the reason")
    func aclRefusalIsLoggedOncePerTopic() async throws {
        let dir = try makeTemporaryDirectory("acl-refusal")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let docker = try await DockerFixture()
        defer { docker.cleanUp() }
        let open = try docker.run("open")
        let closed = try docker.run("closed")
        let password = "pw-\(UUID().uuidString)"
        let passwd = dir.appendingPathComponent("passwd").path
        let acl = dir.appendingPathComponent("acl").path
        let r = try run(["mosquitto_passwd", "-c", "-b", passwd, "bridge", password])
        #expect(r.status == 0, "\(r.output)")
        // Anonymous clients (the test's observer and mosquitto_pub, the lines before any
        // `user`) may do anything; the bridge may reply on one container's topic only.
        try """
        topic readwrite #

        user bridge
        topic write idlewatcher/+/+/event
        topic readwrite idlewatcher/+/+/status
        topic write idlewatcher/docker/\(open)/reply
        topic read idlewatcher/+/+/command
        topic write idlewatcher/bridge/+/state
        topic readwrite idlewatcher/bridge/+/index
        """.write(toFile: acl, atomically: true, encoding: .utf8)
        let passwordFile = dir.appendingPathComponent("bridge-password").path
        try (password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        for f in [passwd, acl] { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f) }
        // `log_type all`: the broker's own "Denied PUBLISH" lines tell the test when it refused.
        let broker = try await MosquittoBroker(extraConfig: "password_file \(passwd)\nacl_file \(acl)\nlog_type all")
        let observer = try MQTTObserver(broker: broker, topics: ["idlewatcher/#", "iwtest/#"])
        try await observer.ready(broker: broker)
        let id = "t\(UUID().uuidString.prefix(6).lowercased())"
        let b = try BridgeProcess(
            yaml: BridgeProcess.dockerConfig(
                bridgeID: id, broker: broker, dockerExtra: "    include: [\(open), \(closed)]",
                mqttExtra: "  username: bridge\n  password_file: \(passwordFile)"),
            bridgeID: id)
        do {
            try await observer.waitFor("idlewatcher/bridge/\(id)/state", timeout: .seconds(20)) { $0.payload == "online" }
            try await observer.waitFor("idlewatcher/docker/\(closed)/status")
            let refusedTopic = "idlewatcher/docker/\(closed)/reply"
            for n in 1...3 {
                try MQTT.publish(
                    broker: broker, topic: "idlewatcher/docker/\(closed)/command",
                    payload: #"{"action":"status","request_id":"c\#(n)"}"#)
            }
            try await eventually("the broker to refuse three replies") {
                broker.log.components(separatedBy: "\n").filter {
                    $0.contains("Denied PUBLISH") && $0.contains("'\(refusedTopic)'")
                }.count == 3
            }
            // The broker sent its three PUBACKs before this command; the bridge reads them, in
            // order, before it can answer: once the answer is here, all three were handled.
            try MQTT.publish(
                broker: broker, topic: "idlewatcher/docker/\(open)/command", payload: #"{"action":"status","request_id":"o1"}"#)
            try await observer.waitFor("idlewatcher/docker/\(open)/reply") { $0.string("request_id") == "o1" }

            let lines = b.log.split(separator: "\n").filter { $0.contains("the MQTT broker refused a message on") }
            #expect(lines.count == 1, "once per topic: \(lines)")
            let line = String(lines.first ?? "")
            #expect(line.contains("refused a message on \(refusedTopic): Not authorized (reason code 0x87)"), "\(line)")
            #expect(line.contains("check the broker's ACL for user 'bridge'"), "\(line)")
            #expect(observer.messages(on: refusedTopic).isEmpty, "the broker dropped them")
            #expect(await b.stop() == 0)
        } catch {
            print("--- bridge log ---\n\(b.log.suffix(4000))\n--- broker log ---\n\(broker.log.suffix(3000))")
            await b.stop()
            await observer.stop()
            await broker.stop()
            throw error
        }
        await observer.stop()
        await broker.stop()
    }

    @Test("events dropped while the broker was away: the total is logged when it is back, and it is exactly what was lost")
    func droppedTotalWhenBack() async throws {
        try await withEnvironment(persistentBroker: true) { env in
            let name = try env.docker.run("flood")
            let b = try await env.startBridge(dockerExtra: "    include: [\(name)]", mqttExtra: "  queue_limit: 6")
            try await env.waitForStatus(name, "running")
            // A round trip first: every event before it has its PUBACK (none is resent after the restart).
            _ = try await env.command(name, ["action": "status"])
            let before = env.eventActions(name).count
            await env.broker.stop()
            for _ in 0..<5 {
                try env.docker.cli("pause", name)
                try env.docker.cli("unpause", name)
            }
            try env.docker.cli("pause", name)
            let outageEvents = 11
            try await eventually("the first drop to be logged") { b.log.contains("1 dropped so far") }
            try await env.broker.start()
            let pattern = try NSRegularExpression(
                pattern:
                    #"(\d+) events? (?:was|were) dropped while the MQTT broker was away \(mqtt\.queue_limit 6\); (\d+) since start"#
            )
            let (dropped, total) = try await eventually("the total in the log when the broker is back", timeout: .seconds(20)) {
                () -> (Int, Int)? in
                let log = b.log
                guard let m = pattern.firstMatch(in: log, range: NSRange(log.startIndex..., in: log)),
                    let a = Range(m.range(at: 1), in: log), let t = Range(m.range(at: 2), in: log)
                else { return nil }
                return (Int(log[a])!, Int(log[t])!)
            }
            #expect(dropped == total, "one outage: the total since start is this outage's")
            // Messages leave in the order they were queued: a reply to a command sent now comes
            // after every event the bridge kept, so once it is here all of them are too. (Waiting
            // for "the last event is a pause" stopped at an earlier pause of the outage.)
            _ = try await env.command(name, ["action": "status"])
            let delivered = env.eventActions(name).count - before
            #expect(dropped + delivered == outageEvents, "dropped \(dropped) + delivered \(delivered): \(env.eventActions(name))")
            #expect(dropped > 0)
            try await env.waitForStatus(name, "paused")
        }
    }
}

extension MosquittoBroker {
    /// Everything this broker (and its earlier runs, after a restart) wrote to its log.
    var log: String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasPrefix("mosquitto-") && $0.hasSuffix(".log") }.sorted()
            .compactMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined(separator: "\n")
    }
}
