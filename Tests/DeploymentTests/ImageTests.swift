import Foundation
import IdlewatcherTesting
import Testing

/// The image `make image` builds, run as docs/install.md says: the Docker socket mounted, the
/// configuration and the MQTT password mounted read-only, against a broker that runs the shipped
/// mosquitto.conf and ACL.
@Suite(
    "The container image",
    .serialized,
    .enabled(if: Deployment.required || Deployment.imageExists, "no idlewatcher-bridge image: `make image` (make test builds it)")
)
struct ImageTests {
    @Test(
        "the image drives a container through the Docker socket, as a non-root user, for a Home Assistant user on an ACL'd broker; healthy; exits 0 on docker stop"
    )
    func drivesAContainer() async throws {
        try await DockerFixture.ensureEngine()
        try Deployment.requireImage()
        let docker = try await DockerFixture()
        defer { docker.cleanUp() }
        let broker = try await ShippedBroker(users: ["bridge", "homeassistant"])
        let ha = try Subscriber(
            broker.user("homeassistant"), topics: ["idlewatcher/#", "homeassistant/#"], probeTopic: "homeassistant/iwtest/probe")
        defer { Task { await ha.stop() } }
        try await ha.ready()

        let target = try docker.runQuickStopper("target")
        let bridgeID = "\(docker.prefix)-image"
        let dir = try makeTemporaryDirectory("image-bridge")
        let config = dir.appendingPathComponent("config.yaml")
        try """
        bridge:
          id: \(bridgeID)
        mqtt:
          url: mqtt://127.0.0.1:\(broker.port)
          username: bridge
          password_file: /run/secrets/mqtt-password
        docker:
          - url: unix:///var/run/docker.sock
            include: [\(target)]
        homeassistant:
          enabled: true
        """.write(to: config, atomically: true, encoding: .utf8)
        let secret = dir.appendingPathComponent("mqtt-password")
        try (broker.passwords["bridge"]! + "\n").write(to: secret, atomically: true, encoding: .utf8)

        let name = "\(docker.prefix)-bridge"
        docker.track(name)
        let socketGroup = try Deployment.dockerSocketGroup()
        _ = try docker.cli(
            "run", "-d", "--name", name, "--network", "host", "--group-add", socketGroup,
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-v", "/var/run/docker.sock:/var/run/docker.sock",
            "-v", "\(config.path):/etc/idlewatcher-bridge/config.yaml:ro",
            "-v", "\(secret.path):/run/secrets/mqtt-password:ro",
            "--health-interval", "1s", "--health-start-period", "60s",
            Deployment.image)
        do {
            #expect(
                try docker.cli("inspect", "-f", "{{.Config.User}}", name) == Deployment.imageUser,
                "the image runs as its own user, not root")
            let state = "idlewatcher/bridge/\(bridgeID)/state"
            try await ha.waitFor(state) { $0.payload == "online" }
            try await ha.waitFor("idlewatcher/docker/\(target)/status") { $0.json?["status"] as? String == "running" }
            // The ACL lets the bridge publish Home Assistant discovery under its own node id.
            try await ha.waitFor("homeassistant/+/idlewatcher_\(bridgeID)/+/config")

            let command = "idlewatcher/docker/\(target)/command"
            let replyTopic = "idlewatcher/docker/\(target)/reply"
            let paused = try broker.user("homeassistant").request(topic: command, responseTopic: replyTopic, payload: "pause")
            #expect(paused.contains(#""ok":true"#) && paused.contains(#""status":"paused""#), "\(paused)")
            #expect(docker.state(target) == "paused")
            let woken = try broker.user("homeassistant").request(topic: command, responseTopic: replyTopic, payload: "wake")
            #expect(woken.contains(#""ok":true"#) && woken.contains(#""status":"running""#), "\(woken)")
            #expect(docker.state(target) == "running")

            // The image's HEALTHCHECK and the command behind it, as compose and people use them.
            try await eventually("Docker to call the bridge healthy", timeout: .seconds(40)) {
                try docker.cli("inspect", "-f", "{{.State.Health.Status}}", name) == "healthy"
            }
            let health = try IdlewatcherTesting.run(
                ["docker", "exec", name, "idlewatcher-bridge", "health", "--config", "/etc/idlewatcher-bridge/config.yaml"])
            #expect(health.status == 0 && health.output.contains("healthy"), "\(health.output)")

            // docker stop: SIGTERM, `offline` published, exit 0.
            _ = try docker.cli("stop", "-t", "20", name)
            #expect(try docker.cli("inspect", "-f", "{{.State.ExitCode}}", name) == "0")
            try await ha.waitFor(state) { $0.payload == "offline" }
        } catch {
            print(
                "--- bridge container log ---\n\((try? IdlewatcherTesting.run(["docker", "logs", name]))?.output.suffix(6000) ?? "")"
            )
            throw error
        }
    }

    @Test("the shipped ACL: no anonymous clients; Home Assistant cannot fake a status; the bridge cannot send commands")
    func acl() async throws {
        let broker = try await ShippedBroker(users: ["bridge", "homeassistant"])
        let ha = try Subscriber(broker.user("homeassistant"), topics: ["idlewatcher/#"], probeTopic: "homeassistant/iwtest/probe")
        defer { Task { await ha.stop() } }
        try await ha.ready()

        let anonymous = try broker.user(nil).publish(topic: "idlewatcher/docker/x/command", payload: "stop")
        #expect(anonymous.status != 0, "an anonymous client is refused: \(anonymous.output)")

        // A denied publish is dropped silently. The broker routes a QoS 1 message before it
        // acknowledges it, so once the allowed ones sent after it have arrived, it would have too.
        #expect(
            try broker.user("homeassistant").publish(topic: "idlewatcher/docker/x/status", payload: "forged-status").status == 0)
        #expect(try broker.user("bridge").publish(topic: "idlewatcher/docker/x/command", payload: "forged-command").status == 0)
        #expect(
            try broker.user("homeassistant").publish(topic: "idlewatcher/docker/x/command", payload: "allowed-command").status
                == 0)
        #expect(
            try broker.user("bridge").publish(topic: "idlewatcher/docker/x/status", payload: #"{"status":"running"}"#).status == 0
        )
        try await ha.waitFor("idlewatcher/docker/x/command") { $0.payload == "allowed-command" }
        try await ha.waitFor("idlewatcher/docker/x/status") { $0.payload.contains("running") }
        let seen = ha.messages.map(\.payload)
        #expect(!seen.contains("forged-status"))
        #expect(!seen.contains("forged-command"))
    }
}
