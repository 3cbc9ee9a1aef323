import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import MQTTClient
import Testing

/// A broker as production should run it: TLS only, client certificates required, users in a
/// password file (mosquitto_passwd), and the project's own ACL (config/mosquitto/acl) plus a
/// test-only `observer` that may read everything.
final class SecureBroker: Sendable {
    let tls: TLSMaterial
    let broker: MosquittoBroker
    let passwordFile: String
    let passwords: [String: String]
    let certificates: [String: TLSMaterial.Pair]

    static let users = ["bridge", "homeassistant", "observer"]

    /// - Parameter serverHosts: the names in the broker's certificate.
    init(serverHosts: [String] = ["DNS:localhost"]) async throws {
        let tls = try TLSMaterial()
        self.tls = tls
        let server = try tls.issue("broker", hosts: serverHosts)
        var certificates: [String: TLSMaterial.Pair] = [:]
        var passwords: [String: String] = [:]
        passwordFile = tls.path("passwd")
        for (n, user) in Self.users.enumerated() {
            certificates[user] = try tls.issue(user, client: true)
            passwords[user] = "\(user)-\(UUID().uuidString)"
            try Self.setPassword(passwordFile, user, passwords[user]!, create: n == 0)
        }
        self.certificates = certificates
        self.passwords = passwords
        let shipped = try String(contentsOf: repositoryRoot.appendingPathComponent("config/mosquitto/acl"), encoding: .utf8)
        let acl = tls.path("acl")
        try
            (shipped + "\n# test only: a subscriber that sees everything\nuser observer\ntopic read #\ntopic readwrite iwtest/#\n")
            .write(toFile: acl, atomically: true, encoding: .utf8)
        for f in [acl, passwordFile] { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f) }
        broker = try await MosquittoBroker(
            listener: """
                listener {port} 127.0.0.1
                certfile \(server.certificate)
                keyfile \(server.key)
                cafile \(tls.caFile)
                require_certificate true
                allow_anonymous false
                password_file \(passwordFile)
                acl_file \(acl)

                """)
    }

    static func setPassword(_ file: String, _ user: String, _ password: String, create: Bool = false) throws {
        let (status, output) = try run(["mosquitto_passwd"] + (create ? ["-c"] : []) + ["-b", file, user, password])
        if status != 0 { throw TestSupportError("mosquitto_passwd failed: \(output)") }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
    }

    /// Changes a user's password and has mosquitto read the file again.
    func setPassword(_ user: String, _ password: String) throws {
        try Self.setPassword(passwordFile, user, password)
        broker.reload()
    }

    var url: String { "mqtts://localhost:\(broker.port)" }

    /// mosquitto_pub / _sub / _rr options to log in as `user` over TLS.
    func login(_ user: String) -> [String] {
        let c = certificates[user]!
        return [
            "-h", "localhost", "-p", "\(broker.port)", "--cafile", tls.caFile, "--cert", c.certificate, "--key", c.key, "-u",
            user,
            "-P", passwords[user]!,
        ]
    }

    /// The project's MQTT client logged in as `user`.
    func client(_ user: String, subscriptions: [String]) async throws -> RecordingClient {
        let (tls, c, pw) = (tls, certificates[user]!, passwords[user]!)
        return try await RecordingClient(
            port: broker.port, subscriptions: subscriptions, clientID: "iwt-\(user)-\(UUID().uuidString.prefix(6))"
        ) {
            $0.host = "localhost"
            $0.tls = true
            $0.caFile = tls.caFile
            $0.certFile = c.certificate
            $0.keyFile = c.key
            $0.username = user
            $0.password = pw
        }
    }

    /// What a subscriber arriving now gets as the retained message of `topic`: nil only when the
    /// broker has none; a subscriber that could not log in or subscribe throws.
    func retained(_ topic: String) async throws -> String? {
        let all = try await MQTT.retained(filter: topic, connection: login("observer"))
        guard all.count <= 1 else { throw TestSupportError("\(all.count) retained messages on \(topic)") }
        return all.first?.payload
    }

    /// The bridge's `mqtt:` section for this broker (`extra` adds or replaces lines).
    func mqttSection(password: String? = "file", extra: [String] = []) throws -> String {
        var lines = [
            "url: \(url)", "client_id: iwt-bridge-\(UUID().uuidString.prefix(6))", "username: bridge", "ca_file: \(tls.caFile)",
            "cert_file: \(certificates["bridge"]!.certificate)", "key_file: \(certificates["bridge"]!.key)",
        ]
        if password == "file" {
            let file = tls.path("bridge-password")
            try (passwords["bridge"]! + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            lines.append("password_file: \(file)")
        }
        for e in extra {
            let key = e.split(separator: ":").first.map(String.init) ?? e
            lines.removeAll { $0.hasPrefix(key + ":") }
            if !e.hasSuffix(": ~") { lines.append(e) }
        }
        return "mqtt:\n" + lines.map { "  " + $0 }.joined(separator: "\n")
    }

    func stop() async { await broker.stop() }
}

/// Security: the broker's TLS and logins, the shipped ACL, Docker over TLS, the bridge's own
/// container, and secrets kept out of every log line and message.
@Suite("Security", .serialized)
struct SecurityTests {
    static func bridgeConfig(id: String, mqtt: String, docker: String, homeassistant: Bool = true) -> String {
        "bridge:\n  id: \(id)\n\(mqtt)\ndocker:\n\(docker)\nhomeassistant:\n  enabled: \(homeassistant)\n"
    }

    @Test(
        "over mqtts:// with client certificates and the shipped ACL the bridge works end to end; Home Assistant can wake a container but cannot fake a status"
    )
    func endToEndUnderTheACL() async throws {
        let secure = try await SecureBroker()
        let docker = try await DockerFixture()
        let id = "s\(UUID().uuidString.prefix(6).lowercased())"
        var bridge: BridgeProcess? = nil
        defer { docker.cleanUp() }
        do {
            let observer = try await secure.client("observer", subscriptions: ["#"])
            try await observer.ready(probeTopic: "iwtest/probe")
            let name = try docker.runQuickStopper("web")
            let other = try docker.run("other")
            let b = try BridgeProcess(
                yaml: Self.bridgeConfig(
                    id: id, mqtt: try secure.mqttSection(),
                    docker: "  - url: unix:///var/run/docker.sock\n    include: [\(name), \(other)]"),
                bridgeID: id)
            bridge = b
            let state = "idlewatcher/bridge/\(id)/state"
            let status = "idlewatcher/docker/\(name)/status"
            func last(_ topic: String) -> String? { observer.messages(on: topic).last?.text }
            try await eventually("online; log:\n\(b.log.suffix(2000))", timeout: .seconds(20)) { last(state) == "online" }
            try await eventually("the status") { observer.messages(on: status).last?.json?["status"] as? String == "running" }
            try await eventually("Home Assistant discovery") {
                observer.messages.contains {
                    $0.topic.hasPrefix("homeassistant/switch/") && $0.topic.contains(name) && !$0.payload.isEmpty
                }
            }

            // Home Assistant sends commands: plain, and with mosquitto_rr (MQTT 5 Response Topic).
            try MQTT.publish(
                broker: secure.broker, topic: "idlewatcher/docker/\(name)/command", payload: "pause",
                extra: secure.login("homeassistant"))
            try await eventually("the pause event") {
                observer.messages(on: "idlewatcher/docker/\(name)/event").contains { $0.json?["action"] as? String == "pause" }
            }
            let (rc, out) = try run(
                [
                    "mosquitto_rr", "-t", "idlewatcher/docker/\(name)/command", "-e", "idlewatcher/docker/\(name)/reply", "-m",
                    "wake", "-W", "20",
                ]
                    + secure.login("homeassistant"))
            #expect(rc == 0, "\(out)")
            let reply = try #require(try JSON.parse(out.trimmingCharacters(in: .whitespacesAndNewlines)).object, "\(out)")
            #expect(reply["ok"] == .bool(true) && reply["status"] == .string("running"), "\(out)")
            try await eventually("running again") { observer.messages(on: status).last?.json?["status"] as? String == "running" }

            // …but cannot say anything in the bridge's name: the ACL refuses, the retained state stays.
            let retainedStatus = try #require(try await secure.retained(status), "the bridge's status is retained")
            let fake =
                #"{"status":"stopped","runtime":"docker","id":"\#(name)","since":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z","bridge":"\#(id)"}"#
            for (topic, payload) in [(status, fake), (state, "offline"), ("idlewatcher/docker/\(name)/event", fake)] {
                _ = try run(["mosquitto_pub", "-q", "1", "-r", "-t", topic, "-m", payload] + secure.login("homeassistant"))
            }
            // Nor make the bridge do it: a Response Topic on another container's status is not used.
            _ = try run(
                [
                    "mosquitto_pub", "-V", "mqttv5", "-q", "1", "-t", "idlewatcher/docker/\(name)/command", "-m",
                    #"{"action":"status","request_id":"deputy"}"#,
                    "-D", "publish", "response-topic", "idlewatcher/docker/\(other)/status",
                ] + secure.login("homeassistant"))
            let deputy = try await observer.waitForMessage("the reply to the deputy command") {
                $0.json?["request_id"] as? String == "deputy" && $0.json?["ok"] != nil
            }
            #expect(deputy.topic == "idlewatcher/docker/\(name)/reply", "the reply went to \(deputy.topic)")
            #expect(try await secure.retained(status) == retainedStatus)
            #expect(try await secure.retained(state) == "online")
            #expect(!observer.messages.contains { $0.text == fake }, "a subscriber saw the fake status")
            #expect(
                !observer.messages.contains { $0.topic.hasSuffix("/status") && $0.json?["ok"] != nil },
                "a reply on a status topic")

            // Availability: a clean stop says offline, exit 0.
            #expect(await b.stop() == 0)
            try await eventually("offline") { last(state) == "offline" }
            await observer.stop()
        } catch {
            if let bridge { print("--- bridge log ---\n\(bridge.log.suffix(4000))") }
            await bridge?.stop()
            await secure.stop()
            throw error
        }
        await secure.stop()
    }

    @Test(
        "the broker's certificate and name are checked, and a client certificate is sent: each failure is refused with a clear log line"
    )
    func brokerTLSIsVerified() async throws {
        let secure = try await SecureBroker(serverHosts: ["DNS:localhost"])  // no IP:127.0.0.1
        defer { Task { await secure.stop() } }
        let rogueClient = try secure.tls.issue("rogue-client", client: true, trusted: false)
        let bridge = secure.certificates["bridge"]!
        // (what is wrong, mqtt lines, what the log must say)
        let cases: [(String, [String], [String])] = [
            (
                "a certificate for another host name", ["url: mqtts://127.0.0.1:\(secure.broker.port)"],
                ["TLS handshake failed", "certificate verify failed", "for the host name '127.0.0.1'"]
            ),
            (
                "a CA that did not sign the broker's certificate", ["ca_file: \(secure.tls.rogueCAFile)"],
                ["TLS handshake failed", "certificate verify failed"]
            ),
            (
                "no client certificate", ["cert_file: ~", "key_file: ~"],
                ["mqtts://localhost", "requires a client certificate (mqtt.cert_file, key_file)"]
            ),
            (
                "a client certificate the broker does not trust",
                ["cert_file: \(rogueClient.certificate)", "key_file: \(rogueClient.key)"], ["TLS handshake failed"]
            ),
            ("the right files", ["cert_file: \(bridge.certificate)"], ["connected to the MQTT broker at mqtts://localhost"]),
        ]
        for (what, lines, expected) in cases {
            let id = "s\(UUID().uuidString.prefix(6).lowercased())"
            let b = try BridgeProcess(
                yaml: Self.bridgeConfig(
                    id: id, mqtt: try secure.mqttSection(extra: lines),
                    docker: "  - url: unix:///var/run/docker.sock\n    include: [none]",
                    homeassistant: false),
                bridgeID: id)
            do {
                try await eventually("\(what): a log line with \(expected)", timeout: .seconds(15)) {
                    let log = b.log
                    return expected.allSatisfy { log.contains($0) }
                }
                #expect(b.child.isRunning, "\(what): the bridge keeps running")
                #expect(await b.stop() == 0, "\(what)")
            } catch {
                print("--- \(what): bridge log ---\n\(b.log.suffix(3000))")
                await b.stop()
                throw error
            }
        }
    }

    @Test(
        "a wrong password is refused with a clear log line; the bridge keeps retrying and gets in once the password is right (from the environment)"
    )
    func wrongPasswordThenRight() async throws {
        let secure = try await SecureBroker()
        defer { Task { await secure.stop() } }
        let observer = try await secure.client("observer", subscriptions: ["idlewatcher/bridge/#"])
        let id = "s\(UUID().uuidString.prefix(6).lowercased())"
        let envPassword = "from-the-environment-\(UUID().uuidString)"
        let b = try BridgeProcess(
            yaml: Self.bridgeConfig(
                id: id, mqtt: try secure.mqttSection(password: "environment"),
                docker: "  - url: unix:///var/run/docker.sock\n    include: [none]",
                homeassistant: false),
            bridgeID: id, environment: ["IDLEWATCHER_MQTT_PASSWORD": envPassword])
        do {
            try await eventually("the refusal in the log", timeout: .seconds(15)) {
                b.log.contains("refused the connection") && b.log.contains("check mqtt.username and the password")
            }
            #expect(b.child.isRunning)
            // The broker now accepts that password: the bridge, still retrying, gets in.
            try secure.setPassword("bridge", envPassword)
            try await eventually("online after the password was fixed", timeout: .seconds(30)) {
                observer.messages(on: "idlewatcher/bridge/\(id)/state").last?.text == "online"
            }
            #expect(!b.log.contains(envPassword))
            #expect(await b.stop() == 0)
        } catch {
            print("--- bridge log ---\n\(b.log.suffix(3000))")
            await b.stop()
            throw error
        }
        await observer.stop()
    }
}

/// The machine's Docker engine behind a TLS server that wants client certificates (socat), as
/// `dockerd --tlsverify` would serve it; the machine's dockerd itself is not reconfigured.
final class DockerTLSProxy: Sendable {
    let port: Int
    let child: ChildProcess

    init(tls: TLSMaterial) async throws {
        let server = try tls.issue("dockerd", hosts: ["DNS:localhost"])
        port = freePort()
        let listen =
            "OPENSSL-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,cert=\(server.certificate),key=\(server.key),cafile=\(tls.caFile),verify=1"
        child = try ChildProcess(
            ["socat", listen, "UNIX-CONNECT:/var/run/docker.sock"], log: tls.directory.appendingPathComponent("socat.log"))
        let port = self.port
        try await eventually("socat listening on \(port)") { isListening(port: port) }
    }

    var url: String { "tcp://localhost:\(port)" }

    func stop() async { await child.terminate(signal: SIGKILL) }
}

extension SecurityTests {
    @Test(
        "Docker over tcp:// with TLS client certificates: the bridge drives a container through it; without a client certificate or with an untrusted CA it says unavailable, with the TLS reason"
    )
    func dockerOverTLS() async throws {
        try await withEnvironment { env in
            let tls = try TLSMaterial()
            let proxy = try await DockerTLSProxy(tls: tls)
            defer { Task { await proxy.stop() } }
            let client = try tls.issue("bridge", client: true)
            _ = try tls.issue("rogue", client: true, trusted: false)
            let name = try env.docker.run("viatls")
            func start(_ files: String, prefix: String) async throws -> BridgeProcess {
                let yaml = BridgeProcess.dockerConfig(bridgeID: env.bridgeID, broker: env.broker)
                    .replacingOccurrences(
                        of: "  - url: unix:///var/run/docker.sock",
                        with: "  - url: \(proxy.url)\n    id_prefix: \"\(prefix)\"\n    include: [\(name)]\n" + files)
                let online = env.observer.messages(on: env.stateTopic).filter { $0.payload == "online" }.count
                let b = try BridgeProcess(yaml: yaml, bridgeID: env.bridgeID)
                env.bridge = b
                try await eventually("online; log:\n\(b.log.suffix(2000))", timeout: .seconds(20)) {
                    env.observer.messages(on: env.stateTopic).filter { $0.payload == "online" }.count > online
                }
                return b
            }

            // With the client certificate: statuses, commands and the event stream all go through TLS.
            let good = try await start(
                "    ca_file: \(tls.caFile)\n    cert_file: \(client.certificate)\n    key_file: \(client.key)", prefix: "tls-")
            try await env.waitForStatus("tls-\(name)", "running")
            let paused = try await env.command("tls-\(name)", ["action": "pause"])
            #expect(paused.string("status") == "paused", "\(paused.payload)")
            #expect(env.docker.state(name) == "paused")
            try await eventually("the pause event") { env.eventActions("tls-\(name)").contains("pause") }
            let woken = try await env.command("tls-\(name)", ["action": "wake"])
            #expect(woken.string("status") == "running", "\(woken.payload)")
            #expect(await good.stop() == 0)

            // (files, what the reason must mention)
            let refusals: [(String, String, [String])] = [
                (
                    "no client certificate", "    ca_file: \(tls.caFile)",
                    ["cannot reach Docker at \(proxy.url)", "client certificate"]
                ),
                (
                    "an untrusted CA",
                    "    ca_file: \(tls.rogueCAFile)\n    cert_file: \(client.certificate)\n    key_file: \(client.key)",
                    ["cannot reach Docker at \(proxy.url)", "certificate"]
                ),
            ]
            for (n, (what, files, reasons)) in refusals.enumerated() {
                let b = try await start(files, prefix: "bad\(n)-")
                let reply = try await env.command("bad\(n)-\(name)", ["action": "stop"])
                let error = reply.json?["error"] as? [String: Any]
                let message = error?["message"] as? String ?? ""
                #expect(error?["code"] as? String == "unavailable", "\(what): \(reply.payload)")
                #expect(reasons.allSatisfy { message.contains($0) }, "\(what): \(message)")
                #expect(
                    ["SSL", "TLS", "certificate"].contains { message.contains($0) }, "\(what): the reason names TLS: \(message)")
                #expect(b.log.contains("cannot reach Docker at \(proxy.url)"), "\(what): a log line")
                #expect(env.docker.state(name) == "running")
                #expect(await b.stop() == 0)
            }
        }
    }
}

extension SecurityTests {
    /// `docker run` options that let the bridge binary built here run in the tiny busybox image:
    /// the libraries it loads (ldd), read-only, at the same paths; the host's loopback; the socket.
    static func runInContainerOptions(binary: String, config: String) throws -> [String] {
        var options = ["-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", "\(config):/config:ro"]
        var dirs: Set<String> = ["/usr", URL(fileURLWithPath: binary).deletingLastPathComponent().path]
        let (_, ldd) = try run(["ldd", binary])
        for line in ldd.split(separator: "\n") {
            guard let path = line.split(separator: " ").first(where: { $0.hasPrefix("/") }) else { continue }
            let dir = URL(fileURLWithPath: String(path)).deletingLastPathComponent().path
            if !dir.hasPrefix("/usr/") && !dir.hasPrefix("/lib") { dirs.insert(dir) }
        }
        for d in dirs.sorted() { options += ["-v", "\(d):\(d):ro"] }
        for d in ["/lib", "/lib64"] {
            let real = URL(fileURLWithPath: d).resolvingSymlinksInPath().path
            options += ["-v", "\(real):\(d):ro"]
        }
        return options
    }

    @Test("in a container with the Docker socket, the bridge finds its own container and never acts on it: only status")
    func ownContainer() async throws {
        try await withEnvironment { env in
            let neighbour = try env.docker.run("neighbour")
            let me = "\(env.docker.prefix)-bridge"
            let binary = URL(fileURLWithPath: BridgeProcess.executable).resolvingSymlinksInPath().path
            let dir = try makeTemporaryDirectory("own")
            try """
            bridge: {id: \(env.bridgeID)}
            mqtt: {url: "\(env.broker.url)", client_id: iwt-own-\(env.bridgeID)}
            docker:
              - url: unix:///var/run/docker.sock
                include: [\(me), \(neighbour)]
            homeassistant: {enabled: false}
            """.write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
            try env.docker.run(
                "bridge", command: [binary, "--config", "/config/config.yaml", "--log-level", "debug"], network: "host",
                options: try Self.runInContainerOptions(binary: binary, config: dir.path))
            func logs() -> String { (try? run(["docker", "logs", me]))?.output ?? "" }
            do {
                try await eventually("the bridge in its container to come online", timeout: .seconds(30)) {
                    env.observer.messages(on: env.stateTopic).contains { $0.payload == "online" }
                }
                try await env.waitForStatus(me, "running")
                for action in ["stop", "kill", "pause", "restart"] {
                    let r = try await env.command(me, ["action": action])
                    let error = r.json?["error"] as? [String: Any]
                    #expect(error?["code"] as? String == "not_allowed", "\(action): \(r.payload)")
                    #expect((error?["message"] as? String)?.contains("allowed: status") == true, "\(r.payload)")
                }
                let s = try await env.command(me, ["action": "status"])
                #expect(s.json?["ok"] as? Bool == true && s.string("status") == "running", "\(s.payload)")
                #expect(env.docker.state(me) == "running")
                // Everything else is as usual.
                let p = try await env.command(neighbour, ["action": "pause"])
                #expect(p.string("status") == "paused", "\(p.payload)")
                #expect(logs().contains("\(me) is the container this bridge runs in: only status is allowed on it"))
            } catch {
                print("--- bridge log (docker logs) ---\n\(logs().suffix(4000))")
                throw error
            }
        }
    }
}

extension SecurityTests {
    @Test(
        "no secret in any log line (trace), reply, status, event, discovery, health file or check-config output, even while things fail"
    )
    func secretsStaySecret() async throws {
        let dir = try makeTemporaryDirectory("secrets")
        func write(_ name: String, _ text: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            return path
        }
        let secrets = [
            "mqtt": "mqtt-pw-\(UUID().uuidString)",  // mqtt.password_file
            "pve": "\(UUID().uuidString.lowercased())",  // proxmox[0].token_secret_file (right)
            "pveEnv": "\(UUID().uuidString.lowercased())",  // IDLEWATCHER_PROXMOX_TOKEN_SECRET (wrong for proxmox[1])
            "pvePassword": "pve-pw-\(UUID().uuidString)",  // IDLEWATCHER_PROXMOX_PASSWORD (set, unused)
            "mqttEnv": "mqtt-env-\(UUID().uuidString)",  // IDLEWATCHER_MQTT_PASSWORD (set, the file wins)
        ]
        // A broker that refuses the bridge's password at first, and an observer that sees everything.
        let passwd = dir.appendingPathComponent("passwd").path
        try SecureBroker.setPassword(passwd, "observer", "observer-pw", create: true)
        try SecureBroker.setPassword(passwd, "bridge", "not-the-bridge-password")
        let broker = try await MosquittoBroker(
            listener: "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file \(passwd)\n")
        let observer = try await RecordingClient(port: broker.port, subscriptions: ["#"]) {
            $0.username = "observer"
            $0.password = "observer-pw"
        }
        let docker = try await DockerFixture()
        let simulatorDir = try makeTemporaryDirectory("pve-sim")
        let simulator = try ChildProcess(
            [
                "python3", repositoryRoot.path + "/tools/pve-simulator/pve_simulator.py", "--port", "0", "--quiet", "--cts", "2",
                "--task-seconds", "0.1", "--token", "root@pam!bridge=\(secrets["pve"]!)", "--ca-out",
                simulatorDir.path + "/ca.pem",
            ], log: simulatorDir.appendingPathComponent("simulator.log"))
        var bridge: BridgeProcess? = nil
        defer {
            docker.cleanUp()
            simulator.signal(SIGKILL)
        }
        do {
            let line = try await eventually("the simulator's listening line", timeout: .seconds(20)) {
                simulator.output.split(separator: "\n").first { $0.hasPrefix("pve-simulator listening on ") }
            }
            let pveURL = String(line.split(separator: " ").last!)
            let name = try docker.run("secret")
            let id = "s\(UUID().uuidString.prefix(6).lowercased())"
            let health = dir.appendingPathComponent("health").path
            let yaml = """
                bridge: {id: \(id), health_file: \(health)}
                mqtt:
                  url: \(broker.url)
                  username: bridge
                  password_file: \(try write("mqtt-password", secrets["mqtt"]! + "\n"))
                docker:
                  - url: unix:///var/run/docker.sock
                    include: [\(name)]
                  - url: tcp://127.0.0.1:\(freePort())
                    id_prefix: "down-"
                proxmox:
                  - url: \(pveURL)
                    token_id: "root@pam!bridge"
                    token_secret_file: \(try write("pve-secret", secrets["pve"]! + "\n"))
                    ca_file: \(simulatorDir.path)/ca.pem
                    id_prefix: "pve-"
                    poll_interval: 500ms
                  - url: \(pveURL)
                    token_id: "root@pam!bridge"
                    ca_file: \(simulatorDir.path)/ca.pem
                    id_prefix: "pvebad-"
                homeassistant: {enabled: true}
                """
            let environment = [
                "IDLEWATCHER_PROXMOX_TOKEN_SECRET": secrets["pveEnv"]!, "IDLEWATCHER_PROXMOX_PASSWORD": secrets["pvePassword"]!,
                "IDLEWATCHER_MQTT_PASSWORD": secrets["mqttEnv"]!,
            ]
            let b = try BridgeProcess(yaml: yaml, bridgeID: id, environment: environment, logLevel: "trace")
            bridge = b
            try await eventually("the broker's refusal", timeout: .seconds(15)) { b.log.contains("refused the connection") }
            try SecureBroker.setPassword(passwd, "bridge", secrets["mqtt"]!)
            broker.reload()
            try await eventually("online", timeout: .seconds(30)) {
                observer.messages(on: "idlewatcher/bridge/\(id)/state").last?.text == "online"
            }
            try await eventually("the statuses") {
                observer.messages(on: "idlewatcher/docker/\(name)/status").last != nil
                    && observer.messages(on: "idlewatcher/proxmox/pve-100/status").last != nil
            }
            // Commands that work and commands that fail, on every runtime.
            let commands: [(String, String)] = [
                ("docker/\(name)", #"{"action":"kill","signal":"SIGNOPE"}"#), ("docker/\(name)", "stpo"),
                ("docker/\(name)", "status"),
                ("proxmox/pve-100", "status"), ("proxmox/pve-100", #"{"action":"stop","signal":"TERM"}"#),
                ("proxmox/pve-999", "wake"),
                ("proxmox/pvebad-100", "wake"), ("docker/down-x", "stop"),
            ]
            for (n, (target, payload)) in commands.enumerated() {
                observer.publish("idlewatcher/\(target)/command", Array(payload.utf8), correlation: "c\(n)")
            }
            try await eventually("every reply", timeout: .seconds(30)) {
                observer.countCorrelated(commands.indices.map { "c\($0)" }) {
                    $0.topic.hasSuffix("/reply") && $0.json?["bridge"] != nil
                } == commands.count
            }
            let codes = commands.indices.map {
                observer.correlated("c\($0)").compactMap { ($0.json?["error"] as? [String: Any])?["code"] as? String }.first
                    ?? "ok"
            }
            #expect(
                codes == ["bad_request", "unknown_action", "ok", "ok", "bad_request", "not_found", "unavailable", "unavailable"],
                "\(codes)")
            let healthText = (try? String(contentsOfFile: health, encoding: .utf8)) ?? ""
            #expect(
                healthText.contains("pvebad") || healthText.contains("127.0.0.1"),
                "the health file names the failing runtimes: \(healthText)")
            #expect(await b.stop() == 0)

            var check = ProcessInfo.processInfo.environment
            for (k, v) in environment { check[k] = v }
            let configFile = dir.appendingPathComponent("config.yaml").path
            try yaml.write(toFile: configFile, atomically: true, encoding: .utf8)
            let checked = try run([BridgeProcess.executable, "check-config", "--config", configFile], environment: check).output
            let broken = try run(
                [BridgeProcess.executable, "check-config", "--config", try write("broken.yaml", yaml + "\nmqtt2: x\n")],
                environment: check
            ).output

            let everything: [(String, String)] = [
                ("the bridge log", b.log), ("the health file", healthText), ("check-config", checked + broken),
                (
                    "MQTT",
                    observer.messages.map {
                        "\($0.topic) \($0.text) \(String(decoding: $0.correlationData ?? [], as: UTF8.self))"
                    }.joined(separator: "\n")
                ),
            ]
            #expect(b.log.contains(" debug "), "the log has everything (trace level)")
            for (what, text) in everything {
                for (secret, value) in secrets {
                    #expect(!text.contains(value), "the \(secret) secret is in \(what)")
                }
            }
            await observer.stop()
        } catch {
            if let bridge { print("--- bridge log ---\n\(bridge.log.suffix(4000))") }
            await bridge?.stop()
            await broker.stop()
            throw error
        }
        await broker.stop()
    }
}

extension SecurityTests {
    @Test("a command cannot forge a log line or repaint the terminal: what it quotes is logged on one line, escaped")
    func noLogForging() async throws {
        try await withEnvironment { env in try await Self.tryToForge(env) }
    }

    static func tryToForge(_ env: TestEnvironment) async throws {
        let name = try env.docker.run("logged")
        try await env.startBridge(dockerExtra: "    include: [\(name)]")
        try await env.waitForStatus(name, "running")
        let forged = "2026-01-01T00:00:00+0000 error idlewatcher-bridge: FORGED"
        let requestID = "x\n" + forged
        let r = try await env.command(name, ["action": "status", "request_id": requestID])
        #expect(r.string("request_id") == requestID, "the reply still echoes it unchanged")
        let u = try await env.command(name, ["action": "st\u{1B}[31mop\r\u{202E}\n" + forged])
        #expect(u.payload.contains("unknown_action"), "\(u.payload)")
        try await eventually("both commands in the log") { env.bridge?.log.contains("unknown action") == true }
        checkOneLine(env.bridge?.log ?? "")
    }

    static func checkOneLine(_ log: String) {
        let forgedLines = log.split(separator: "\n").filter { $0.hasPrefix("2026-01-01") }
        #expect(forgedLines.isEmpty, "a forged line: \(forgedLines)")
        #expect(!log.contains("\u{1B}") && !log.contains("\u{202E}") && !log.contains("\r"))
        #expect(log.contains("x\\n2026-01-01"), "the request id is there, escaped")
    }
}

extension RecordingClient {
    /// Waits for a message that matches, and returns it.
    func waitForMessage(
        _ what: String, timeout: Duration = .seconds(15), where match: @escaping (MQTTIncomingMessage) -> Bool
    ) async throws
        -> MQTTIncomingMessage
    {
        try await eventually(what, timeout: timeout) { self.messages.first(where: match) }
    }
}
