import Foundation
import IdlewatcherTesting
import Testing

/// The installed unit run by a real systemd (this machine's, 252) as PID 1 of a container, so
/// that its hardening, its credentials, its user and group and its stop are seen to work, not
/// only to parse. The container's root file system is `make install DESTDIR=…` plus systemd,
/// journald and the libraries they and the bridge load; the bridge reaches the host's Docker
/// socket and a broker running the shipped mosquitto.conf and ACL.
@Suite(
    "The systemd unit under systemd",
    .serialized,
    .enabled(if: Deployment.required || (Deployment.releaseBuilt && DockerFixture.ping()), "no release build: `make release`"))
struct SystemdTests {
    @Test(
        "the installed unit runs the bridge as idlewatcher with its credentials and every hardening option; health answers; systemctl stop publishes offline"
    )
    func unitUnderSystemd() async throws {
        try Deployment.requireReleaseBinary()
        try await DockerFixture.ensureEngine()
        let docker = try await DockerFixture()
        defer { docker.cleanUp() }
        let broker = try await ShippedBroker(users: ["bridge", "homeassistant"])
        let ha = try Subscriber(broker.user("homeassistant"), topics: ["idlewatcher/#"], probeTopic: "homeassistant/iwtest/probe")
        defer { Task { await ha.stop() } }
        try await ha.ready()

        let socketGroup = try Deployment.dockerSocketGroup()
        let image = "\(docker.prefix)-systemd:test"
        try SystemdImage.build(image, dockerGroup: socketGroup)
        defer {
            docker.cleanUp()  // the container first, so that the image goes entirely
            _ = try? run(["docker", "rmi", image])
        }

        let target = try docker.runQuickStopper("target")
        let bridgeID = "\(docker.prefix)-systemd"
        let dir = try makeTemporaryDirectory("systemd-bridge")
        let config = dir.appendingPathComponent("config.yaml")
        try """
        bridge:
          id: \(bridgeID)
        mqtt:
          url: mqtt://127.0.0.1:\(broker.port)
          username: bridge
          password_file: /run/credentials/idlewatcher-bridge.service/mqtt-password
        docker:
          - url: unix:///var/run/docker.sock
            include: [\(target)]
        homeassistant:
          enabled: false
        """.write(to: config, atomically: true, encoding: .utf8)
        // docs/install.md: the secret in /etc/idlewatcher-bridge/credentials/, root's alone.
        let secret = dir.appendingPathComponent("mqtt-password")
        try (broker.passwords["bridge"]! + "\n").write(to: secret, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secret.path)

        let name = "\(docker.prefix)-systemd"
        docker.track(name)
        // systemd as PID 1 wants capabilities, no seccomp profile of Docker's, its own cgroup
        // namespace and shared mount propagation (which it sets itself only on a real boot).
        _ = try docker.cli(
            "run", "-d", "--name", name, "--network", "host",
            "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
            "--security-opt", "apparmor=unconfined", "--cgroupns", "private", "-e", "container=docker",
            "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
            "-v", "/var/run/docker.sock:/run/docker.sock",
            "-v", "\(config.path):/etc/idlewatcher-bridge/config.yaml:ro",
            "-v", "\(secret.path):/etc/idlewatcher-bridge/credentials/mqtt-password:ro",
            "--entrypoint", "/usr/bin/busybox", image, "sh", "-c", "mount --make-rshared / && exec /lib/systemd/systemd")
        func exec(_ args: String...) throws -> (status: Int32, output: String) { try run(["docker", "exec", name] + args) }
        func journal() -> String { (try? exec("journalctl", "--no-pager", "-u", "idlewatcher-bridge"))?.output ?? "" }
        do {
            let state = "idlewatcher/bridge/\(bridgeID)/state"
            try await ha.waitFor(state, timeout: .seconds(30)) { $0.payload == "online" }
            #expect(try exec("systemctl", "is-active", "idlewatcher-bridge").output.hasPrefix("active"))

            // Its own user, in the docker group; the secret came through LoadCredential=.
            let pid = try exec("systemctl", "show", "-p", "MainPID", "--value", "idlewatcher-bridge").output
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let status = try exec("busybox", "cat", "/proc/\(pid)/status").output
            let uid = try exec("busybox", "id", "-u", "idlewatcher").output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(status.contains("\nUid:\t\(uid)\t"), "runs as idlewatcher (\(uid)): \(status.prefix(600))")
            let groups = status.split(separator: "\n").first { $0.hasPrefix("Groups:") } ?? ""
            #expect(
                groups.split(whereSeparator: \.isWhitespace).contains(Substring(socketGroup)), "in the docker group: \(groups)")
            #expect(
                status.contains("\nNoNewPrivs:\t1\n") && status.contains("\nSeccomp:\t2\n")
                    && status.contains("\nCapEff:\t0000000000000000\n"))

            let paused = try broker.user("homeassistant").request(
                topic: "idlewatcher/docker/\(target)/command", responseTopic: "idlewatcher/docker/\(target)/reply",
                payload: "pause")
            #expect(paused.contains(#""ok":true"#) && paused.contains(#""status":"paused""#), "\(paused)")
            #expect(docker.state(target) == "paused")

            // docs/install.md, "Health", for systemd.
            try await eventually("health to say healthy", timeout: .seconds(20)) {
                let h = try run([
                    "docker", "exec", "-e", "RUNTIME_DIRECTORY=/run/idlewatcher-bridge", name,
                    "idlewatcher-bridge", "health", "--config", "/etc/idlewatcher-bridge/config.yaml",
                ])
                return h.status == 0 && h.output.contains("healthy")
            }

            _ = try exec("systemctl", "stop", "idlewatcher-bridge")
            try await ha.waitFor(state) { $0.payload == "offline" }
            #expect(
                try exec("systemctl", "is-failed", "idlewatcher-bridge").output.hasPrefix("inactive"),
                "stopped cleanly, not failed")
            let log = journal()
            #expect(log.contains("starting as bridge '\(bridgeID)'") && log.contains("stopped"), "\(log.suffix(3000))")
            // SystemCallErrorNumber=EPERM: a call the filter refuses fails with errno 1, which the
            // Swift runtime would log (as it did when @resources was filtered out).
            #expect(!log.contains("errno=1 ") && !log.contains("errno=1\n"), "no system call refused: \(log.suffix(2000))")
        } catch {
            print("--- journal ---\n\(((try? exec("journalctl", "--no-pager"))?.output ?? "").suffix(6000))")
            throw error
        }
    }
}

enum SystemdImage {
    /// An image holding `make install DESTDIR=ROOT` (the real target), systemd and journald from
    /// this machine with the libraries they load, the Swift runtime the installed binary links
    /// (a real host keeps its toolchain), busybox for looking around, the `idlewatcher` user made
    /// by the installed sysusers.d file, a `docker` group with the host socket's gid, and the
    /// unit enabled by `systemctl --root enable` (its [Install] section).
    static func build(_ name: String, dockerGroup: String) throws {
        let script = #"""
            set -euo pipefail
            image=$1; gid=$2; repo=$3
            r=$(mktemp -d); trap 'rm -rf "$r"' EXIT
            mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib64,usr/lib/systemd/system,etc/systemd/system,var,tmp,run,proc,sys,dev,root}
            ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"; ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s ../run "$r/var/run"
            chmod 1777 "$r/tmp"
            "$repo/scripts/copy-with-libraries.sh" "$r" /usr/lib/systemd/systemd /usr/lib/systemd/systemd-journald \
              /usr/bin/systemctl /usr/bin/journalctl
            cp /bin/busybox "$r/usr/bin/busybox"; ln -s busybox "$r/usr/bin/sh"
            u=/usr/lib/systemd/system
            for unit in sysinit.target basic.target sockets.target paths.target timers.target slices.target local-fs.target \
                        local-fs-pre.target swap.target network.target network-online.target network-pre.target multi-user.target \
                        shutdown.target emergency.target rescue.target umount.target final.target \
                        systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket; do
              cp -a "$u/$unit" "$r$u/"
            done
            ln -s multi-user.target "$r$u/default.target"
            mkdir -p "$r$u/sockets.target.wants" "$r$u/sysinit.target.wants"
            ln -s ../systemd-journald.socket ../systemd-journald-dev-log.socket "$r$u/sockets.target.wants/"
            ln -s ../systemd-journald.service "$r$u/sysinit.target.wants/"
            make --no-print-directory -C "$repo" -o release install DESTDIR="$r" >/dev/null
            "$repo/scripts/copy-with-libraries.sh" "$r" --libraries-only "$r/usr/local/bin/idlewatcher-bridge"
            printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
            printf 'root:x:0:\ndocker:x:%s:\n' "$gid" > "$r/etc/group"
            : > "$r/etc/shadow"; : > "$r/etc/gshadow"; : > "$r/etc/machine-id"
            printf 'ID=debian\nPRETTY_NAME="idlewatcher-bridge systemd test"\n' > "$r/etc/os-release"
            systemd-sysusers --root="$r" idlewatcher-bridge.conf >/dev/null
            systemctl --root="$r" enable idlewatcher-bridge.service >/dev/null 2>&1
            tar -C "$r" -c . | docker import - "$image" >/dev/null
            """#
        let r = try run(["bash", "-c", script, "build-systemd-image", name, dockerGroup, repositoryRoot.path])
        if r.status != 0 { throw TestSupportError("cannot build the systemd test image: \(r.output)") }
    }
}
