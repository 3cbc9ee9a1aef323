import Foundation
import IdlewatcherTesting
import Testing

/// The configuration files shipped for deployments pass `check-config` where they will run.
@Suite("Shipped configurations")
struct ConfigFilesTests {
    /// The environment without any secret the configuration could take from it.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for k in ["IDLEWATCHER_MQTT_PASSWORD", "IDLEWATCHER_PROXMOX_TOKEN_SECRET", "IDLEWATCHER_PROXMOX_PASSWORD"] {
            env.removeValue(forKey: k)
        }
        return env.merging(extra) { $1 }
    }

    @Test(
        "config/proxmox-only.yaml passes check-config with IDLEWATCHER_PROXMOX_TOKEN_SECRET set, and names the missing secret without it"
    )
    func proxmoxOnly() throws {
        let path = Deployment.file("config/proxmox-only.yaml").path
        let ok = try run(
            [BridgeProcess.executable, "check-config", "--config", path],
            environment: environment(["IDLEWATCHER_PROXMOX_TOKEN_SECRET": "0b0e…-token"]))
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("0 Docker endpoint(s), 1 Proxmox cluster(s)"), "\(ok.output)")
        let missing = try run([BridgeProcess.executable, "check-config", "--config", path], environment: environment())
        #expect(missing.status == 1)
        #expect(missing.output.contains("proxmox[0].token_secret_file: the token secret is missing"), "\(missing.output)")
    }

    @Test(
        "deploy/compose/config.yaml passes check-config inside the image with its compose secret mounted",
        .enabled(if: Deployment.required || Deployment.imageExists, "no idlewatcher-bridge image: `make image`"))
    func composeConfiguration() throws {
        try Deployment.requireImage()
        let dir = try makeTemporaryDirectory("compose-secret")
        let secret = dir.appendingPathComponent("mqtt-password")
        try "a-long-random-password\n".write(to: secret, atomically: true, encoding: .utf8)
        let config = Deployment.file("deploy/compose/config.yaml").path
        func checkConfig(withSecret: Bool) throws -> (status: Int32, output: String) {
            var args = ["docker", "run", "--rm", "--network", "none", "-v", "\(config):/etc/idlewatcher-bridge/config.yaml:ro"]
            if withSecret { args += ["-v", "\(secret.path):/run/secrets/mqtt-password:ro"] }
            return try run(args + [Deployment.image, "check-config", "--config", "/etc/idlewatcher-bridge/config.yaml"])
        }
        let ok = try checkConfig(withSecret: true)
        #expect(ok.status == 0 && ok.output.contains("OK (bridge docker-host"), "\(ok.output)")
        // Without the secret the same file is refused, naming the key and the file.
        let bare = try checkConfig(withSecret: false)
        #expect(
            bare.status == 1 && bare.output.contains("mqtt.password_file: cannot read /run/secrets/mqtt-password"),
            "\(bare.output)")
    }
}
