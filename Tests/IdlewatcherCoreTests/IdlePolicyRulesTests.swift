import BridgeConfig
import IdlewatcherCore
import Testing

@testable import IdlePolicy

/// The idle policy's rules without I/O: the configuration, the labels, the timer.
@Suite("Idle policy rules")
struct IdlePolicyRulesTests {
    let loader = ConfigurationLoader(environment: [:], hostName: "h")

    func problems(_ idle: String) -> [String] {
        do {
            _ = try loader.parse(yaml: "docker:\n  - url: unix:///var/run/docker.sock\nidle:\n" + idle)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("check-config refuses a dependency cycle, naming it once")
    func cycles() {
        let p = problems(
            """
              containers:
                docker/a: {depends_on: [docker/b]}
                docker/b: {depends_on: [proxmox/105]}
                proxmox/105: {depends_on: [docker/a]}
                docker/c: {depends_on: [docker/c]}
            """)
        #expect(
            p.contains(
                "idle.containers.docker/a.depends_on: dependency cycle docker/a → docker/b → proxmox/105 → docker/a: a container cannot wait for itself"
            ), "\(p)")
        #expect(p.contains { $0.hasPrefix("idle.containers.docker/c.depends_on: dependency cycle docker/c → docker/c") }, "\(p)")
        #expect(p.count == 2, "\(p)")
        #expect(problems("  containers:\n    docker/a: {depends_on: [docker/b]}\n    docker/b: {timeout: 5m}").isEmpty)
    }

    @Test("every idle key is checked, with its path")
    func keys() {
        #expect(problems("  action: nap") == ["idle.action: must be stop, pause or kill, got 'nap'"])
        #expect(problems("  wake_timeout: 0s") == ["idle.wake_timeout: must be from 1s to 24h"])
        #expect(
            problems("  traffic_threshold: lots").first?.hasPrefix("idle.traffic_threshold: must be bytes per minute") == true)
        #expect(
            problems("  containers:\n    jellyfin: {timeout: 1m}").first?.hasPrefix(
                "idle.containers.jellyfin: must be <runtime>/<id>") == true)
        #expect(problems("  colour: red").first?.hasPrefix("idle.colour: unknown key") == true)
        #expect(
            problems("  timeout: 10m\n  action: pause").isEmpty, "pause is in the default allow list")
    }

    @Test("config wins over labels, labels over defaults; compose's depends_on when no idlewatcher.depends_on")
    func resolution() throws {
        var c = IdleConfiguration()
        c.timeout = .seconds(60)
        c.containers[ContainerRef(RuntimeKind("docker"), "web")] = .init(timeout: .seconds(5))
        let labels = ["idlewatcher.idle_timeout": "30s", "idlewatcher.idle_action": "pause"]
        let web = c.settings(for: ContainerRef(RuntimeKind("docker"), "web"), labels: labels)
        #expect(web.timeout == .seconds(5) && web.action == .pause)
        let other = c.settings(for: ContainerRef(RuntimeKind("docker"), "other"), labels: labels)
        #expect(other.timeout == .seconds(30))
        let plain = c.settings(for: ContainerRef(RuntimeKind("docker"), "plain"), labels: [:])
        #expect(plain.timeout == .seconds(60) && plain.action == .stop)

        let compose = [
            "com.docker.compose.project": "media",
            "com.docker.compose.depends_on": "db:service_started:false,cache:service_healthy:true",
        ]
        let siblings = ["media/db": "media-db-1", "media/cache": "media-cache-1", "other/db": "other-db-1"]
        let app = c.settings(for: ContainerRef(RuntimeKind("docker"), "app"), labels: compose, siblings: siblings)
        #expect(app.dependsOn.map(\.description) == ["docker/media-db-1", "docker/media-cache-1"])
        var explicit = compose
        explicit["idlewatcher.depends_on"] = "proxmox/105"
        #expect(
            c.settings(for: ContainerRef(RuntimeKind("docker"), "app"), labels: explicit, siblings: siblings).dependsOn.map(
                \.description)
                == ["proxmox/105"])
    }

    @Test("a failed idle action is retried after 30 s, then 60 s, never sooner; activity resets that")
    func retryBackoff() {
        let settings = IdleSettings(
            timeout: .seconds(10), action: .stop, wakeTimeout: .seconds(60), dependsOn: [], trafficThreshold: 0)
        let t0 = Timestamp(seconds: 1_000_000)
        var t = IdleTimer(settings: settings, lastActivity: t0, running: true)
        #expect(t.due(at: t0 + .seconds(10)))
        t.sleeping = true
        t.failed(at: t0 + .seconds(10))
        #expect(!t.due(at: t0 + .seconds(39)))
        #expect(t.due(at: t0 + .seconds(40)))
        t.sleeping = true
        t.failed(at: t0 + .seconds(40))
        #expect(!t.due(at: t0 + .seconds(99)))
        #expect(t.due(at: t0 + .seconds(100)))
        t.touch(at: t0 + .seconds(100))
        #expect(!t.due(at: t0 + .seconds(109)) && t.due(at: t0 + .seconds(110)))
    }

    @Test("activity payloads: touches, leases, releases, and what is refused")
    func activityPayloads() {
        func parse(_ s: String) -> ActivityMessage? { try? ActivityMessage.parse(Array(s.utf8)).get() }
        #expect(parse("") == .touch)
        #expect(parse("playing") == .touch)
        #expect(parse(#"{"holder":"tv","ttl":"3h"}"#) == .lease(holder: "tv", ttl: .seconds(10800)))
        #expect(parse(#"{"holder":"tv"}"#) == .lease(holder: "tv", ttl: nil))
        #expect(parse(#"{"holder":"tv","release":true}"#) == .release(holder: "tv"))
        for bad in [#"{"holder":"tv","ttl":"8d"}"#, #"{"holder":""}"#, #"{"holder":"x","extra":1}"#, "{", #"{"ttl":"1h"}"#] {
            #expect(parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite("Dependency wake chains")
struct WakeChainTests {
    @Test("a chain rides in the request id, finds a cycle, and is cut to 128 characters oldest first")
    func chains() throws {
        let app = try #require(ContainerRef(parsing: "docker/app"))
        let db = try #require(ContainerRef(parsing: "proxmox/105"))
        // A user's wake carries no chain.
        #expect(WakeChain(requestID: "ha-4711").links.isEmpty)
        #expect(WakeChain(requestID: nil).links.isEmpty)
        let first = WakeChain(requestID: nil).appending(app)
        let id = first.requestID(nonce: "host:1,2")
        #expect(id == "dep:host_1_2:docker/app")
        let second = WakeChain(requestID: id).appending(db)
        #expect(second.links == ["docker/app", "proxmox/105"])
        #expect(second.cycle(with: app) == "docker/app → proxmox/105 → docker/app")
        #expect(second.cycle(with: try #require(ContainerRef(parsing: "docker/other"))) == nil)
        // Too long for a request id: the oldest links go first.
        var long = WakeChain()
        for k in 0..<20 { long = long.appending(try #require(ContainerRef(parsing: "docker/container-\(k)"))) }
        let cut = long.requestID(nonce: "n")
        #expect(cut.count <= 128)
        #expect(WakeChain(requestID: cut).links.last == "docker/container-19")
        #expect(!WakeChain(requestID: cut).links.contains("docker/container-0"))
    }
}
