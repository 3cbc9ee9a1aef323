import Foundation
import IdlewatcherTesting
import Testing

/// `idlewatcher-bridge check-config`: every problem on its own `path.to.key: problem` line, exit 1.
@Suite("check-config")
struct ConfigTests {
    struct Case: Sendable, CustomStringConvertible {
        var yaml: String
        var expected: String
        var description: String { expected }
    }

    static let valid = """
        bridge:
          id: host1
        mqtt:
          url: mqtt://127.0.0.1:1883
        docker:
          - url: unix:///var/run/docker.sock
        """

    static let cases: [Case] = [
        Case(yaml: "bridge:\n  id: host/1\ndocker: [{url: unix:///x}]", expected: "bridge.id: must match [A-Za-z0-9_-]+"),
        Case(
            yaml: "mqtt:\n  url: http://x:1883\ndocker: [{url: unix:///x}]",
            expected: "mqtt.url: must start with mqtt:// or mqtts://"),
        Case(yaml: "mqtt:\n  url: mqtt://x:99999\ndocker: [{url: unix:///x}]", expected: "mqtt.url: the port must be a number"),
        Case(yaml: "mqtt:\n  protocol: 4.5\ndocker: [{url: unix:///x}]", expected: "mqtt.protocol: must be 5 or 3.1.1"),
        Case(
            yaml: "mqtt:\n  base_topic: a/#\ndocker: [{url: unix:///x}]",
            expected: "mqtt.base_topic: must be a topic without wildcards"),
        Case(
            yaml: "mqtt:\n  username: u\n  password: hunter2\ndocker: [{url: unix:///x}]",
            expected: "mqtt.password: secrets are not read from the configuration file"),
        Case(
            yaml: "mqtt:\n  username: u\n  password_file: /nonexistent/pw\ndocker: [{url: unix:///x}]",
            expected: "mqtt.password_file: cannot read /nonexistent/pw"),
        Case(
            yaml: "mqtt:\n  queue_limit: 0\ndocker: [{url: unix:///x}]",
            expected: "mqtt.queue_limit: must be a whole number from 1"),
        Case(yaml: "mqtt:\n  colour: blue\ndocker: [{url: unix:///x}]", expected: "mqtt.colour: unknown key"),
        Case(yaml: "docker:\n  - url: ftp://host", expected: "docker[0].url: unsupported scheme"),
        Case(yaml: "docker:\n  - url: unix:///x\n    id_prefix: a/b", expected: "docker[0].id_prefix: must not contain '/'"),
        Case(yaml: "docker:\n  - url: unix:///x\n    include: web", expected: "docker[0].include: must be a list"),
        Case(
            yaml: "docker:\n  - url: unix:///x\n  - url: tcp://h:2375",
            expected: "docker[1].id_prefix: '' is also the id_prefix of docker[0]"),
        Case(
            yaml: "docker: [{url: unix:///x}]\ndefaults:\n  stop_timeout: ten",
            expected: "defaults.stop_timeout: must be a duration like 500ms"),
        Case(
            yaml: "docker: [{url: unix:///x}]\ndefaults:\n  allow: [start, explode]",
            expected: "defaults.allow[1]: unknown action 'explode'"),
        Case(
            yaml: "docker: [{url: unix:///x}]\nhomeassistant:\n  enabled: maybe",
            expected: "homeassistant.enabled: must be true or false"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    token_id: root@pam!bridge",
            expected: "proxmox[0].token_secret_file: the token secret is missing"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    token_id: rootpam",
            expected: "proxmox[0].token_id: must look like user@realm!tokenname"),
        Case(
            yaml: "proxmox:\n  - url: pve:8006\n    token_id: root@pam!b\n    token_secret_file: /nonexistent",
            expected: "proxmox[0].url: must start with https://"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    token_id: root@pam!b\n    token_secret: abc",
            expected: "proxmox[0].token_secret: secrets are not read"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    username: bridge@pve\n    password_file: /p\n    poll_interval: 10ms",
            expected: "proxmox[0].poll_interval: must be at least 200ms"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    username: bridge@pve\n    password_file: /p\n    request_timeout: 0s",
            expected: "proxmox[0].request_timeout: must be at least 1s"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    username: bridge@pve\n    password_file: /p\n    types: [lxc, vm]",
            expected: "proxmox[0].types[1]: must be lxc (containers) or qemu (VMs), got 'vm'"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    username: bridge@pve\n    password_file: /p\n    types: []",
            expected: "proxmox[0].types: must name at least one of lxc and qemu"),
        Case(
            yaml: "proxmox:\n  - url: https://pve:8006\n    username: bridge@pve\n    password_file: /p\n    vmids: [99]",
            expected: "proxmox[0].vmids[0]: must be a vmid (a whole number from 100 to 999999999)"),
        Case(
            yaml: "docker: [{url: unix:///x}]\nmqtt:\n  keepalive: 19h",
            expected: "mqtt.keepalive: must be from 5s to 65535s (MQTT's limit, about 18h)"),
        Case(yaml: "bridge: [1, 2]\ndocker: [{url: unix:///x}]", expected: "bridge: must be a mapping"),
        Case(yaml: "{{{", expected: "not valid YAML"),
        Case(yaml: "bridge:\n  id: x", expected: "docker: no runtime configured"),
    ]

    func check(_ yaml: String, environment: [String: String] = [:]) throws -> (Int32, String) {
        let dir = try makeTemporaryDirectory("config")
        let file = dir.appendingPathComponent("c.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "IDLEWATCHER_MQTT_PASSWORD")
        env.removeValue(forKey: "IDLEWATCHER_PROXMOX_TOKEN_SECRET")
        env.removeValue(forKey: "IDLEWATCHER_PROXMOX_PASSWORD")
        for (k, v) in environment { env[k] = v }
        let r = try run([BridgeProcess.executable, "check-config", "--config", file.path], environment: env)
        return (r.status, r.output)
    }

    @Test("a valid configuration exits 0")
    func valid() throws {
        let (status, output) = try check(Self.valid)
        #expect(status == 0, "\(output)")
    }

    @Test("each invalid key gives its path: problem line and exit 1", arguments: cases)
    func invalid(_ c: Case) throws {
        let (status, output) = try check(c.yaml)
        #expect(status == 1)
        #expect(
            output.split(separator: "\n").contains { $0.hasPrefix(c.expected) },
            "expected a line starting with '\(c.expected)', got:\n\(output)")
    }

    @Test("all problems are reported at once, and no secret is printed")
    func allAtOnce() throws {
        let dir = try makeTemporaryDirectory("secret")
        let pw = dir.appendingPathComponent("pw")
        try "s3cret-value\n".write(to: pw, atomically: true, encoding: .utf8)
        let (status, output) = try check(
            "bridge:\n  id: 'a b'\nmqtt:\n  username: u\n  password_file: \(pw.path)\n  protocol: 9\ndocker:\n  - url: ftp://x")
        #expect(status == 1)
        #expect(output.split(separator: "\n").count >= 3, "\(output)")
        #expect(!output.contains("s3cret-value"))
    }

    @Test("secrets come from the environment when no file is named")
    func secretFromEnvironment() throws {
        let (status, output) = try check(
            "proxmox:\n  - url: https://pve:8006\n    token_id: root@pam!b",
            environment: ["IDLEWATCHER_PROXMOX_TOKEN_SECRET": "abc-123"])
        #expect(status == 0, "\(output)")
        #expect(!output.contains("abc-123"))
    }
}

/// Issue 14: one line for one bad URL, and `docker: []` treated like no section at all.
@Suite("check-config says each thing once")
struct CheckConfigOnceTests {
    func check(_ yaml: String) throws -> (Int32, [String]) {
        let dir = try makeTemporaryDirectory("once")
        let file = dir.appendingPathComponent("c.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let (status, output) = try run([BridgeProcess.executable, "check-config", "--config", file.path])
        return (status, output.split(separator: "\n").map(String.init))
    }

    @Test("a bad mqtt.url is one line")
    func oneLineForABadURL() throws {
        let (status, lines) = try check("mqtt:\n  url: http://broker:1883\ndocker: [{url: unix:///var/run/docker.sock}]")
        #expect(status == 1)
        #expect(lines == ["mqtt.url: must start with mqtt:// or mqtts://, got 'http://broker:1883'"])
    }

    @Test("an empty runtime list is no runtime, as a missing section is")
    func emptyRuntimeList() throws {
        for yaml in ["docker: []", "bridge:\n  id: x", "podman: []\nproxmox: []"] {
            let (status, lines) = try check(yaml)
            #expect(status == 1, "\(yaml)")
            #expect(lines == ["docker: no runtime configured: add a docker, proxmox or podman entry"], "\(yaml): \(lines)")
        }
    }
}
