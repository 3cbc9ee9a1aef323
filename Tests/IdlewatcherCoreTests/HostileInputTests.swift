import BridgeConfig
import DockerProvider
import IdlewatcherCore
import Synchronization
import Testing

@testable import Bridge

/// Regressions for what the fuzz tests (Tests/BridgeTests/FuzzTests.swift) found.
@Suite("Hostile input: regressions")
struct HostileInputTests {
    @Test("a JSON key given twice is refused: the bridge must not pick one of two actions")
    func duplicateKeys() {
        #expect(throws: JSONParseError.self) { try JSON.parse(#"{"action":"status","action":"stop"}"#) }
        #expect(throws: JSONParseError.self) { try JSON.parse(#"{"a":{"b":1,"b":1}}"#) }
        #expect((try? JSON.parse(#"{"a":null,"b":[{"a":1},{"a":2}]}"#)) != nil, "the same key in different objects is fine")
        for payload in [#"{"action":"status","action":"stop"}"#, #"{"action":"kill","signal":1,"signal":9}"#] {
            guard case .failure(let r) = Command.parse(Array(payload.utf8), runtime: .docker) else {
                Issue.record("accepted \(payload)")
                continue
            }
            #expect(r.error.code == .badRequest)
            #expect(r.error.message.contains("duplicate key"))
        }
    }

    @Test("topics are split on bytes: an id may begin with a combining mark or U+200D")
    func topicsByBytes() {
        let t = Topics(base: "idlewatcher", bridgeID: "b")
        for id in ["\u{301}x", "\u{200D}x", "nas-\u{301}x", "x\u{20DD}"] {
            let parsed = t.parse("idlewatcher/docker/\(id)/command")
            #expect(parsed?.runtime == .docker)
            #expect(parsed.map { Array($0.id.utf8) } == Array(id.utf8))
            #expect(parsed?.leaf == "command")
        }
        #expect(t.parse("idlewatcher\u{301}/docker/x/command") == nil)
    }

    @Test("a command admitted while its container's worker is between two jobs is run once, by that worker")
    func queueHandOver() {
        let queues = CommandQueues(limit: 16)
        func job(_ a: Action) -> (Job, Job.Requester) {
            let t = Job.Requester(requestID: nil, deliver: { _ in })
            return (Job(command: Command(action: a), endpoint: 0, id: "web", requester: t), t)
        }
        let key = CommandQueues.Key(endpoint: 0, id: "web")
        let (a, ta) = job(.status)
        #expect(queues.admit(a, requester: ta) == .startWorker)
        #expect(queues.head(key) === a)
        queues.pop(key)  // the worker finished a, and has not looked for the next one yet
        let (b, tb) = job(.status)
        #expect(queues.admit(b, requester: tb) == .queued, "the running worker takes it: no second worker")
        #expect(queues.head(key) === b)
        queues.pop(key)
        #expect(queues.head(key) == nil)  // the worker ends…
        let (c, tc) = job(.status)
        #expect(queues.admit(c, requester: tc) == .startWorker)  // …and the next command starts one
    }

    @Test("under concurrency every admitted command runs exactly once")
    func queueStress() async {
        let queues = CommandQueues(limit: 100_000)
        final class Runs: Sendable { let counts = Mutex<[String: Int]>([:]) }
        let runs = Runs()
        await withDiscardingTaskGroup { group in
            for n in 0..<3000 {
                let t = Job.Requester(requestID: "\(n)", deliver: { _ in })
                let j = Job(command: Command(action: .status, requestID: "\(n)"), endpoint: 0, id: "c\(n % 3)", requester: t)
                let key = CommandQueues.Key(endpoint: 0, id: j.id)
                if queues.admit(j, requester: t) == .startWorker {
                    group.addTask {
                        while let job = queues.head(key) {
                            runs.counts.withLock { $0[job.command.requestID!, default: 0] += 1 }
                            await Task.yield()
                            queues.pop(key)
                        }
                    }
                }
                if n % 7 == 0 { await Task.yield() }
            }
        }
        let counts = runs.counts.withLock { $0 }
        #expect(counts.count == 3000, "\(3000 - counts.count) commands never ran")
        #expect(counts.values.allSatisfy { $0 == 1 }, "\(counts.values.filter { $0 > 1 }.count) ran twice")
    }

    @Test("a Response Topic may not point into the bridge's own topics, except replies")
    func responseTopics() {
        let t = Topics(base: "idlewatcher", bridgeID: "b")
        for ok in ["reply/ha-1", "ha/answers", "idlewatcher/docker/web/reply", "idlewatcher/proxmox/105/reply", "idlewatcherx/a"]
        {
            #expect(t.acceptsResponseTopic(ok), "\(ok)")
        }
        for refused in [
            "", "a/+", "a/#", "idlewatcher/docker/web/status", "idlewatcher/docker/other/command", "idlewatcher/docker/web/event",
            "idlewatcher/bridge/b/state", "idlewatcher/bridge/other/state", "idlewatcher", "idlewatcher/docker/web/reply/x",
        ] {
            #expect(!t.acceptsResponseTopic(refused), "\(refused)")
        }
    }

    @Test("every configuration problem is one line, with no echo of the file")
    func oneLineProblems() {
        let loader = ConfigurationLoader(environment: [:], hostName: "h")
        let cases = [
            "bridge:\n  id: \"a\\nb\\u001B[31m\"\ndocker: [{url: unix:///x}]",  // a value with a line break and an escape
            "a: [\n  b\n c: :\n",  // a YAML syntax error (Yams quotes the line and a caret)
            "bridge: {id: x}\nbridge: {id: y}\ndocker: [{url: unix:///x}]",  // duplicate keys (Yams quotes the whole file)
            "x: " + String(repeating: "[", count: 5000),  // too deep
            "\"k\\nl\": 1\ndocker: [{url: unix:///x}]",  // a key with a line break
            "mqtt:\n  base_topic: \"" + String(repeating: "#", count: 100_000) + "\"\ndocker: [{url: unix:///x}]",
            "- just\n- a list",
        ]
        for yaml in cases {
            do {
                _ = try loader.parse(yaml: yaml)
                Issue.record("accepted: \(yaml.prefix(80))")
            } catch {
                for p in error.problems {
                    #expect(
                        !p.description.contains("\n") && !p.description.contains("\r"),
                        "\(p.description.prefix(300).debugDescription)")
                    #expect(p.description.count < 700, "\(p.description.prefix(300))")
                    #expect(
                        !p.path.isEmpty || p.message.hasPrefix("not valid YAML: ") || p.message.hasPrefix("the configuration"),
                        "\(p)")
                }
            }
        }
    }

    @Test("the bridge finds the container it runs in, and nothing on a plain host")
    func ownContainer() {
        let id = String(repeating: "0123456789abcdef", count: 4)
        let other = String(repeating: "fedcba9876543210", count: 4)
        // Docker, cgroup v2 (private cgroup namespace): only mountinfo tells.
        let docker = """
            1123 1100 0:52 / / rw,relatime master:553 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
            1130 1123 254:1 /var/lib/docker/containers/\(id)/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw
            1131 1123 254:1 /var/lib/docker/containers/\(id)/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw
            """
        #expect(OwnContainer.find(mountinfo: docker, cgroup: "0::/\n", hostname: "web")?.id == id)
        let podman = "88 77 0:40 /containers/storage/overlay-containers/\(id)/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw"
        #expect(OwnContainer.find(mountinfo: podman, cgroup: nil, hostname: nil)?.id == id)
        // cgroup v1 and the systemd driver.
        #expect(OwnContainer.find(mountinfo: nil, cgroup: "12:memory:/docker/\(id)\n", hostname: nil)?.id == id)
        #expect(OwnContainer.find(mountinfo: nil, cgroup: "0::/system.slice/docker-\(id).scope\n", hostname: nil)?.id == id)
        // Only the host name: Docker's default is the 12-digit short id.
        let short = OwnContainer.find(mountinfo: nil, cgroup: nil, hostname: String(id.prefix(12)))
        #expect(short?.matches(id) == true)
        #expect(short?.matches(other) == false)
        // On the host itself, other containers' mounts are listed: they are not ours.
        let host = "500 30 0:60 / /var/lib/docker/containers/\(other)/mounts/shm rw - tmpfs shm rw"
        #expect(OwnContainer.find(mountinfo: host, cgroup: "0::/user.slice\n", hostname: "myhost") == nil)
        #expect(OwnContainer.find(mountinfo: nil, cgroup: nil, hostname: "deadbeef") == nil)
        #expect(OwnContainer.find(mountinfo: nil, cgroup: nil, hostname: "ABCDEF012345") == nil)
    }
}
