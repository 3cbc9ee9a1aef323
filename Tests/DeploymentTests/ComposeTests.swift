import Foundation
import IdlewatcherTesting
import Testing

/// `docker compose up` on deploy/compose/compose.yaml as shipped, with its config.yaml and the
/// mosquitto files it mounts. Only what a test machine cannot have differs: the images
/// (`IDLEWATCHER_IMAGE` is `make image`'s; `MOSQUITTO_IMAGE` is this machine's mosquitto in an
/// imported image, eclipse-mosquitto being out of reach) and the published port.
@Suite(
    "Docker Compose",
    .serialized,
    .enabled(
        if: Deployment.required || (Compose.command != nil && Deployment.imageExists),
        "needs docker compose (or docker-compose) and `make image`"))
struct ComposeTests {
    @Test(
        "compose.yaml starts mosquitto and a healthy bridge that drives containers for Home Assistant and refuses to stop its own"
    )
    func composeUp() async throws {
        try await DockerFixture.ensureEngine()
        try Deployment.requireImage()
        guard let compose = Compose.command else {
            throw TestSupportError("neither `docker compose` nor `docker-compose` is installed")
        }
        // The file names its two containers; never touch containers of the same name we did not make.
        for name in ["idlewatcher-mosquitto", "idlewatcher-bridge"] {
            if (try run(["docker", "container", "inspect", name])).status == 0 {
                throw TestSupportError("a container named \(name) exists already (a real deployment?); not touching it")
            }
        }
        let docker = try await DockerFixture()
        defer { docker.cleanUp() }
        let mosquittoImage = "\(docker.prefix)-mosquitto:test"
        try Compose.buildMosquittoImage(mosquittoImage)
        defer { _ = try? run(["docker", "rmi", mosquittoImage]) }  // after `compose down` below

        // The repository's layout, as compose.yaml refers to ../../config/mosquitto.
        let tree = try makeTemporaryDirectory("compose")
        let composeDir = tree.appendingPathComponent("deploy/compose")
        let secrets = composeDir.appendingPathComponent("secrets")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: tree.appendingPathComponent("config/mosquitto"), withIntermediateDirectories: true)
        for f in [
            "deploy/compose/compose.yaml", "deploy/compose/config.yaml", "config/mosquitto/mosquitto.conf",
            "config/mosquitto/acl",
        ] {
            try FileManager.default.copyItem(at: Deployment.file(f), to: tree.appendingPathComponent(f))
        }
        let bridgePassword = "pw-bridge-\(UUID().uuidString.prefix(8))"
        let haPassword = "pw-ha-\(UUID().uuidString.prefix(8))"
        try (bridgePassword + "\n").write(to: secrets.appendingPathComponent("mqtt-password"), atomically: true, encoding: .utf8)
        let passwd = secrets.appendingPathComponent("mosquitto-passwd").path
        #expect(try run(["mosquitto_passwd", "-c", "-b", passwd, "bridge", bridgePassword]).status == 0)
        #expect(try run(["mosquitto_passwd", "-b", passwd, "homeassistant", haPassword]).status == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: passwd)

        let port = freePort()
        let gid = try Deployment.dockerSocketGroup()
        var env = ProcessInfo.processInfo.environment
        env["MQTT_PORT"] = "\(port)"
        env["DOCKER_GID"] = gid
        env["MOSQUITTO_IMAGE"] = mosquittoImage
        env["IDLEWATCHER_IMAGE"] = Deployment.image
        let project = ["-p", docker.prefix, "-f", composeDir.appendingPathComponent("compose.yaml").path]
        func composeRun(_ args: [String]) throws -> (status: Int32, output: String) {
            try run(compose + project + args, environment: env)
        }
        defer { _ = try? composeRun(["down", "-v", "--remove-orphans", "-t", "20"]) }

        let target = try docker.runQuickStopper("target")
        let up = try composeRun(["up", "-d", "--no-build"])
        #expect(up.status == 0, "compose up: \(up.output)")
        do {
            let ha = MQTTUser(port: port, name: "homeassistant", password: haPassword)
            try await eventually("the compose broker to listen on \(port)", timeout: .seconds(30)) { isListening(port: port) }
            let sub = try Subscriber(ha, topics: ["idlewatcher/#"], probeTopic: "homeassistant/iwtest/probe")
            defer { Task { await sub.stop() } }
            try await sub.ready()
            try await sub.waitFor("idlewatcher/bridge/docker-host/state", timeout: .seconds(30)) { $0.payload == "online" }
            try await sub.waitFor("idlewatcher/docker/\(target)/status") { $0.json?["status"] as? String == "running" }

            let paused = try ha.request(
                topic: "idlewatcher/docker/\(target)/command", responseTopic: "idlewatcher/docker/\(target)/reply",
                payload: "pause")
            #expect(paused.contains(#""ok":true"#) && paused.contains(#""status":"paused""#), "\(paused)")
            #expect(docker.state(target) == "paused")

            // config.yaml protects the broker and the bridge from MQTT.
            let refused = try ha.request(
                topic: "idlewatcher/docker/idlewatcher-mosquitto/command",
                responseTopic: "idlewatcher/docker/idlewatcher-mosquitto/reply",
                payload: "stop")
            #expect(refused.contains(#""ok":false"#) && refused.contains("not_allowed"), "\(refused)")
            #expect(docker.state("idlewatcher-mosquitto") == "running")

            // The health check of compose.yaml (first run after its 30 s interval).
            try await eventually("compose's health check to call the bridge healthy", timeout: .seconds(90)) {
                docker.inspect("idlewatcher-bridge", "{{.State.Health.Status}}") == "healthy"
            }
            #expect(docker.inspect("idlewatcher-bridge", "{{.Config.User}}") == Deployment.imageUser)
            #expect(docker.inspect("idlewatcher-bridge", "{{.HostConfig.ReadonlyRootfs}}") == "true")
        } catch {
            print("--- compose logs ---\n\((try? composeRun(["logs", "--no-color"]))?.output.suffix(8000) ?? "")")
            throw error
        }
    }
}

extension DockerFixture {
    /// `docker container inspect -f FORMAT NAME`, or nil if there is no such container.
    func inspect(_ name: String, _ format: String) -> String? {
        guard let r = try? IdlewatcherTesting.run(["docker", "container", "inspect", "-f", format, name]), r.status == 0 else {
            return nil
        }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

enum Compose {
    /// `docker compose` (v2) where it exists, else `docker-compose` (v1, Debian's package).
    static let command: [String]? = {
        if (try? run(["docker", "compose", "version"]))?.status == 0 { return ["docker", "compose"] }
        if (try? run(["docker-compose", "version"]))?.status == 0 { return ["docker-compose"] }
        return nil
    }()

    /// This machine's mosquitto in an imported image, as a stand-in for eclipse-mosquitto: the
    /// same user (1883) and data folder (/mosquitto/data).
    static func buildMosquittoImage(_ name: String) throws {
        let script = #"""
            set -eu
            r=$(mktemp -d); trap 'rm -rf "$r"' EXIT
            mkdir -p "$r/usr/sbin" "$r/usr/lib64" "$r/etc" "$r/mosquitto/data" "$r/tmp"
            ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
            "$2/scripts/copy-with-libraries.sh" "$r" /usr/sbin/mosquitto
            printf 'root:x:0:0::/root:/usr/sbin/nologin\nmosquitto:x:1883:1883::/mosquitto:/usr/sbin/nologin\n' > "$r/etc/passwd"
            printf 'root:x:0:\nmosquitto:x:1883:\n' > "$r/etc/group"
            chown 1883:1883 "$r/mosquitto/data"; chmod 1777 "$r/tmp"
            tar -C "$r" -c . | docker import - "$1" >/dev/null
            """#
        let r = try run(["bash", "-c", script, "build-mosquitto-image", name, repositoryRoot.path])
        if r.status != 0 { throw TestSupportError("cannot build the mosquitto stand-in image: \(r.output)") }
    }
}
