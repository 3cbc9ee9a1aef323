import Foundation
import IdlewatcherTesting
import Testing

/// Two sites, each with its own mosquitto, joined by mosquitto's own bridge (`connection`,
/// `topic idlewatcher/# both 1`), and an idlewatcher bridge on each side: what users with a
/// broker per site run.
@Suite("Two brokers bridged")
struct BrokerChainTests {
    func config(id: String, broker: MosquittoBroker, prefix: String, include: String) -> String {
        """
        bridge:
          id: \(id)
        mqtt:
          url: \(broker.url)
        docker:
          - url: unix:///var/run/docker.sock
            id_prefix: "\(prefix)"
            include: [\(include)]
        homeassistant:
          enabled: false
        """
    }

    @Test("statuses, commands and replies cross the link both ways; the link drops for 10 s and what happened meanwhile arrives")
    func acrossTheLink() async throws {
        try await withEnvironment { env in
            let a = try env.docker.run("sitea")
            let b = try env.docker.run("siteb")
            // The link runs through a socat proxy, so that the test can cut it like a WAN outage.
            let linkPort = freePort()
            let linkLog = try makeTemporaryDirectory("link").appendingPathComponent("socat.log")
            let link = [
                "socat", "TCP-LISTEN:\(linkPort),bind=127.0.0.1,reuseaddr,fork", "TCP:127.0.0.1:\(env.broker.port)",
            ]
            var proxy = try ChildProcess(link, log: linkLog)
            try await eventually("the link proxy to listen") { isListening(port: linkPort) }
            // Site B's broker bridges to site A's (env.broker): persistent session, retry every second.
            let siteB = try await MosquittoBroker(
                extraConfig: """
                    connection site-a
                    address 127.0.0.1:\(linkPort)
                    topic idlewatcher/# both 1
                    cleansession false
                    restart_timeout 1
                    """)
            let observerB = try MQTTObserver(broker: siteB)
            try await observerB.ready(broker: siteB)
            let hostA = try BridgeProcess(
                yaml: config(id: "sitea", broker: env.broker, prefix: "a-", include: a), bridgeID: "sitea")
            let hostB = try BridgeProcess(yaml: config(id: "siteb", broker: siteB, prefix: "b-", include: b), bridgeID: "siteb")
            defer {
                hostA.child.signal(SIGKILL)
                hostB.child.signal(SIGKILL)
                _ = try? run(["pkill", "-KILL", "-P", "\(proxy.pid)"])
                proxy.signal(SIGKILL)
            }
            let statusA = "idlewatcher/docker/a-\(a)/status"
            let statusB = "idlewatcher/docker/b-\(b)/status"

            // Each site sees the other's bridge and statuses.
            try await observerB.waitFor("idlewatcher/bridge/sitea/state", timeout: .seconds(20)) { $0.payload == "online" }
            try await env.observer.waitFor("idlewatcher/bridge/siteb/state", timeout: .seconds(20)) { $0.payload == "online" }
            try await observerB.waitFor(statusA, timeout: .seconds(20)) { $0.string("status") == "running" }
            try await env.observer.waitFor(statusB, timeout: .seconds(20)) { $0.string("status") == "running" }

            // A command from site B for site A's container: executed there, the reply comes back.
            try MQTT.publish(
                broker: siteB, topic: "idlewatcher/docker/a-\(a)/command", payload: #"{"action":"pause","request_id":"b2a"}"#)
            let reply = try await observerB.waitFor("idlewatcher/docker/a-\(a)/reply", timeout: .seconds(20)) {
                $0.string("request_id") == "b2a"
            }
            #expect(reply.json?["ok"] as? Bool == true && reply.string("bridge") == "sitea", "\(reply.payload)")
            #expect(env.docker.state(a) == "paused")
            try await observerB.waitFor(statusA) { $0.string("status") == "paused" }
            // And from site A for site B's.
            try MQTT.publish(
                broker: env.broker, topic: "idlewatcher/docker/b-\(b)/command", payload: #"{"action":"pause","request_id":"a2b"}"#
            )
            let back = try await env.observer.waitFor("idlewatcher/docker/b-\(b)/reply", timeout: .seconds(20)) {
                $0.string("request_id") == "a2b"
            }
            #expect(back.json?["ok"] as? Bool == true && back.string("bridge") == "siteb", "\(back.payload)")
            #expect(env.docker.state(b) == "paused")

            // The link drops for 10 s (the outage is the scenario, not a wait for something).
            // Meanwhile site A's container changes: site A sees it at once, site B after the link is back.
            // socat forks a process per connection: kill those first, then the listener.
            try run(["pkill", "-KILL", "-P", "\(proxy.pid)"])
            await proxy.terminate(signal: SIGKILL)
            let eventsBefore = observerB.messages(on: "idlewatcher/docker/a-\(a)/event").count
            try env.docker.cli("unpause", a)
            try await env.observer.waitFor(statusA) { $0.string("status") == "running" }
            try await Task.sleep(for: .seconds(10))
            #expect(
                observerB.messages(on: "idlewatcher/docker/a-\(a)/event").count == eventsBefore,
                "nothing crossed while the link was down")
            proxy = try ChildProcess(link, log: linkLog)
            let unpause = try await observerB.waitFor("idlewatcher/docker/a-\(a)/event", timeout: .seconds(20)) {
                $0.string("action") == "unpause"
            }
            #expect(unpause.string("status") == "running")
            try await observerB.waitFor(statusA) { $0.string("status") == "running" }
            #expect(observerB.messages(on: "idlewatcher/bridge/sitea/state").last?.payload == "online")

            // Commands cross again.
            try MQTT.publish(
                broker: siteB, topic: "idlewatcher/docker/a-\(a)/command", payload: #"{"action":"stop","request_id":"again"}"#)
            let again = try await observerB.waitFor("idlewatcher/docker/a-\(a)/reply", timeout: .seconds(30)) {
                $0.string("request_id") == "again"
            }
            #expect(again.json?["ok"] as? Bool == true, "\(again.payload)")
            #expect(env.docker.state(a) == "exited")
            await hostA.stop()
            await hostB.stop()
            await observerB.stop()
            await siteB.stop()
        }
    }
}
