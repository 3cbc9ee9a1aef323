import BridgeConfig
import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import MQTTClient
import Testing

/// Hostile input: generated commands through a real broker to the real bridge, generated
/// configuration files to `check-config`, and ids that are not (or not this bridge's) containers.
/// The generators live in Sources/IdlewatcherTesting (Fuzz*.swift); a failure prints the seed,
/// and `IDLEWATCHER_FUZZ_SEED=<seed>` replays it.
@Suite("Hostile input", .serialized)
struct FuzzTests {
    static let seed = FuzzRandom.seed(default: 0x1D1E_5EED)

    @Test("12,000 generated commands: exactly one right answer for each, no container touched, the bridge alive and small")
    func generatedCommands() async throws {
        try await withEnvironment { env in
            let running = try env.docker.run("run")
            let stopped = try env.docker.run("stopped", start: false)
            let ns = FuzzCommandNamespace(idPrefix: "fz-", runningName: running, stoppedName: stopped)
            // Every valid command waits its turn (nothing here may be answered `busy`).
            let bridge = try await env.startBridge(
                dockerExtra: "    id_prefix: \"\(ns.idPrefix)\"\n    include: [\(running), \(stopped)]",
                extra: "defaults:\n  command_queue_limit: 10000")
            try await env.waitForStatus(ns.runningID, "running")
            try await env.waitForStatus(ns.stoppedID, "stopped")
            let untouched = [running, stopped].map { ($0, inspect($0)) }
            let memoryBefore = try #require(ProcessMemory(pid: bridge.child.pid))

            let client = try await RecordingClient(port: env.broker.port, subscriptions: ["idlewatcher/#"])
            try await client.ready(probeTopic: "idlewatcher/iwtest/probe")
            var generator = FuzzCommandGenerator(seed: Self.seed, namespace: ns)
            let cases = generator.cases(12_000)

            // In batches, so that no queue in the broker (1000 messages per client by default)
            // can overflow: wait for each batch's replies before sending the next.
            let isReply: @Sendable (MQTTIncomingMessage) -> Bool = { m in
                m.topic.hasSuffix("/reply") && (m.json?["bridge"] as? String) == env.bridgeID
            }
            let started = ContinuousClock.now
            for start in stride(from: 0, to: cases.count, by: 500) {
                let range = start..<min(start + 500, cases.count)
                for i in range { client.publish(cases[i].topic, cases[i].payload, correlation: "fz\(i)") }
                let awaited = range.filter { !cases[$0].isIgnored }.map { "fz\($0)" }
                func missing() -> String {
                    let m = range.filter { i in !cases[i].isIgnored && !client.correlated("fz\(i)").contains(where: isReply) }
                    return "\(m.count) missing: " + m.prefix(5).map { "#\($0) \(cases[$0])" }.joined(separator: "\n")
                }
                try await eventually("replies to cases \(range) (seed \(Self.seed)); \(missing())", timeout: .seconds(60)) {
                    guard bridge.child.isRunning else { throw TestSupportError("the bridge exited: \(bridge.log.suffix(3000))") }
                    return client.countCorrelated(awaited, where: isReply) == awaited.count
                }
            }
            // A last command: once it is answered, every earlier one has been read, so an
            // ignored command that was going to be answered would have been by now.
            client.publish(ns.commandTopic(ns.runningID), Array("status".utf8), correlation: "marker")
            try await eventually("the marker's reply") { client.correlated("marker").contains(where: isReply) }
            let elapsed = ContinuousClock.now - started

            var wrong: [String] = []
            var byCategory: [String: Int] = [:]
            for (i, c) in cases.enumerated() {
                byCategory[c.category, default: 0] += 1
                let replies = client.correlated("fz\(i)").filter(isReply)
                if let problem = Self.check(c, replies: replies, namespace: ns, bridgeID: env.bridgeID) {
                    wrong.append("#\(i) \(c)\n    → \(problem)")
                }
            }
            print(
                "fuzz: \(cases.count) commands (seed \(Self.seed)) answered in \(elapsed); by category: \(byCategory.sorted { $0.key < $1.key })"
            )
            #expect(
                wrong.isEmpty, "\(wrong.count) wrong answers (seed \(Self.seed)):\n\(wrong.prefix(25).joined(separator: "\n"))")

            // Nothing was touched: Docker says so, no event was published, no status changed,
            // and the bridge never asked Docker to change anything (its debug log lists every request).
            for (name, state) in untouched { #expect(inspect(name) == state, "\(name) was touched") }
            // (What the bridge published: the fuzz itself sends junk to event topics too.)
            let fromBridge = client.messages.filter { $0.json?["bridge"] as? String == env.bridgeID }
            let events = fromBridge.filter { $0.topic.hasSuffix("/event") }
            #expect(events.isEmpty, "events during the fuzz: \(events.prefix(5).map(\.text))")
            let statuses = fromBridge.filter { $0.topic.hasSuffix("/status") }
            #expect(
                statuses.allSatisfy { m in
                    (m.json?["status"] as? String)
                        == (m.topic == "idlewatcher/docker/\(ns.runningID)/status" ? "running" : "stopped")
                }, "a status changed: \(statuses.map(\.text).prefix(5))")
            #expect(
                !bridge.log.contains("docker POST"),
                "the bridge sent Docker a change: \(bridge.log.components(separatedBy: "\n").filter { $0.contains("docker POST") }.prefix(3))"
            )

            // Alive, bounded, and a clean exit.
            #expect(bridge.child.isRunning)
            let memoryAfter = try #require(ProcessMemory(pid: bridge.child.pid))
            print("fuzz: bridge memory before \(memoryBefore), after \(memoryAfter)")
            // The debug binary measured 25.0 MiB before and a 30.8 MiB peak after (2026-12-02).
            #expect(memoryAfter.peak < 40 * ProcessMemory.mebibyte, "\(memoryAfter)")
            #expect(
                memoryAfter.resident - memoryBefore.resident < 10 * ProcessMemory.mebibyte,
                "before \(memoryBefore), after \(memoryAfter)")
            await client.stop()
            #expect(await bridge.stop() == 0, "exit status after SIGTERM")
        }
    }

    /// What is wrong with the answers to one case, or nil.
    static func check(
        _ c: FuzzCommandCase, replies: [MQTTIncomingMessage], namespace ns: FuzzCommandNamespace, bridgeID: String
    ) -> String? {
        guard case .reply(let codes, let status, let requestID, let action) = c.expectation else {
            return replies.isEmpty ? nil : "expected no reply, got \(replies.map(\.text))"
        }
        guard replies.count == 1, let r = replies.first else {
            return "expected one reply, got \(replies.count): \(replies.map(\.text))"
        }
        guard r.topic == ns.replyTopic(c.id) else { return "reply on \(r.topic.prefix(100))" }
        // The project's own parser: Foundation's drops a leading U+FEFF from strings.
        guard let json = (try? JSON.parse(r.payload))?.object else { return "the reply is not a JSON object: \(r.text)" }
        let ok = json["ok"]?.bool
        let error = json["error"]?.object
        let code = ok == true ? "ok" : (error?["code"]?.string ?? "?")
        if !codes.contains(code) { return "expected \(codes.sorted()), got \(r.text.prefix(400))" }
        if ok == false, error?["message"]?.string?.isEmpty != false { return "no error message: \(r.text)" }
        if ok == true, error != nil { return "ok with an error: \(r.text)" }
        if json["status"] != status.map(JSON.string) ?? .null {
            return "expected status \(status ?? "null"): \(r.text.prefix(400))"
        }
        func same(_ a: String?, _ b: String) -> Bool { a.map { Array($0.utf8) == Array(b.utf8) } ?? false }  // not canonical equivalence
        switch requestID {
        case .null: if json["request_id"] != .null { return "expected request_id null: \(r.text.prefix(400))" }
        case .echo(let rid):
            if !same(json["request_id"]?.string, rid) {
                return "expected request_id \(rid.debugDescription): \(r.text.prefix(400))"
            }
        case .any: break
        }
        if let action, json["action"]?.string != action { return "expected action \(action): \(r.text.prefix(400))" }
        if json["runtime"]?.string != "docker" || !same(json["id"]?.string, c.id) || json["bridge"]?.string != bridgeID {
            return "runtime, id or bridge wrong: \(r.text.prefix(400))"
        }
        return nil
    }

    /// What `docker inspect` says of a container's life: changed by any start, stop, pause or kill.
    func inspect(_ name: String) -> String {
        let (_, out) =
            (try? run([
                "docker", "inspect", "-f", "{{.State.Status}} {{.State.StartedAt}} {{.State.FinishedAt}} {{.RestartCount}}", name,
            ])) ?? (1, "")
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("ids that are not containers, or not this bridge's, or odd: not_found or ignored, exactly as the contract says")
    func oddIDs() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("target")
            let hidden = try env.docker.run("hidden", labels: ["idlewatcher.enable": "false"])
            try await env.startBridge(dockerExtra: "    id_prefix: \"nas-\"\n    include: [\(name), \(hidden)]")
            try await env.waitForStatus("nas-" + name, "running")
            let fullID = try env.docker.cli("inspect", "-f", "{{.Id}}", name)
            let untouched = [name, hidden].map { ($0, inspect($0)) }
            let client = try await RecordingClient(port: env.broker.port, subscriptions: ["idlewatcher/#"])
            try await client.ready(probeTopic: "idlewatcher/iwtest/probe")

            // (id, why): in this bridge's namespace, but no exposed container has that id.
            let notFound: [(String, String)] = [
                ("nas-", "the prefix alone"),
                ("nas-" + fullID, "a container's Docker id is not its id here"),
                ("nas-" + String(fullID.prefix(12)), "nor is its short id"),
                ("nas-" + name.uppercased(), "names are case-sensitive"),
                ("nas-" + name + " ", "a trailing space"),
                ("nas-" + name + "\u{200B}", "a zero-width space"),
                ("nas-\u{202E}" + String(name.reversed()), "right-to-left override"),
                ("nas-\u{301}" + name, "a combining mark right after the prefix (a regression: it was ignored)"),
                ("nas-\u{200D}" + name, "U+200D right after the prefix (a regression: it was ignored)"),
                ("nas-" + hidden, "hidden by idlewatcher.enable=false"),
                ("nas-..", "dots"),
                ("nas-%2e%2e%2fcontainers%2f" + name, "URL escapes are not decoded"),
                ("nas-" + name + "?signal=9", "a query string is part of the id"),
                ("nas-" + String(repeating: "n", count: 20_000), "a very long id"),
            ]
            // Topics that are not this bridge's (another bridge, another runtime, not a command).
            let ignored: [(String, String)] = [
                ("idlewatcher/docker/\(name)/command", "the name without this bridge's prefix: another bridge's"),
                ("idlewatcher/docker/NAS-\(name)/command", "another prefix"),
                ("idlewatcher/docker/other-\(name)/command", "another prefix"),
                ("idlewatcher/proxmox/nas-\(name)/command", "another runtime"),
                ("idlewatcher/docker/nas-\(name)/command/now", "a level too many"),
                ("idlewatcher/docker/nas-\(name)/Command", "not the command topic"),
                ("idlewatcher2/docker/nas-\(name)/command", "another base topic"),
                ("idlewatcher/docker//command", "an empty id"),
            ]
            let destructive = ["kill", "stop", "{\"action\":\"kill\",\"signal\":9}", "restart", "pause"]
            for (n, (id, _)) in notFound.enumerated() {
                client.publish(
                    "idlewatcher/docker/\(id)/command", Array(destructive[n % destructive.count].utf8), correlation: "nf\(n)")
            }
            for (n, (topic, _)) in ignored.enumerated() {
                client.publish(topic, Array(destructive[n % destructive.count].utf8), correlation: "ig\(n)")
            }
            client.publish("idlewatcher/docker/nas-\(name)/command", Array("status".utf8), correlation: "marker")
            let isReply: (MQTTIncomingMessage) -> Bool = { $0.topic.hasSuffix("/reply") && $0.json?["bridge"] != nil }
            try await eventually("the answers") {
                client.countCorrelated(notFound.indices.map { "nf\($0)" } + ["marker"], where: isReply) == notFound.count + 1
            }
            for (n, (id, why)) in notFound.enumerated() {
                let replies = client.correlated("nf\(n)").filter(isReply)
                #expect(replies.count == 1, "\(why)")
                let r = try #require(replies.first)
                #expect(r.topic == "idlewatcher/docker/\(id)/reply", "\(why)")
                #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "not_found", "\(why): \(r.text.prefix(300))")
                #expect(r.json?["status"] is NSNull, "\(why)")
            }
            for (n, (topic, why)) in ignored.enumerated() {
                #expect(client.correlated("ig\(n)").filter(isReply).isEmpty, "\(topic): \(why)")
            }
            for (n, (topic, _)) in ignored.enumerated() where topic.hasSuffix("/command") {
                // Never answered, on any topic.
                let replyTopic = String(topic.dropLast("command".count)) + "reply"
                #expect(!client.messages.contains { $0.topic == replyTopic && $0.correlationData == Array("ig\(n)".utf8) })
            }
            for (c, state) in untouched { #expect(inspect(c) == state, "\(c) was touched") }
            let events = client.messages.filter { $0.topic.hasSuffix("/event") }
            #expect(events.isEmpty, "\(events.map(\.text))")
            await client.stop()
        }
    }

    @Test("a few hundred generated configuration files through check-config: exit 0 or 1, never a signal; one problem per line")
    func generatedConfigurations() throws {
        var generator = FuzzConfigGenerator(seed: Self.seed)
        let dir = try makeTemporaryDirectory("config-fuzz")
        var env = ProcessInfo.processInfo.environment
        for key in ["IDLEWATCHER_MQTT_PASSWORD", "IDLEWATCHER_PROXMOX_PASSWORD"] { env.removeValue(forKey: key) }
        for (k, v) in FuzzConfigGenerator.environment { env[k] = v }
        var wrong: [String] = []
        for n in 0..<300 {
            let c = generator.next()
            let file = dir.appendingPathComponent("c\(n).yaml")
            try Data(c.bytes).write(to: file)
            let (status, output) = try run([BridgeProcess.executable, "check-config", "--config", file.path], environment: env)
            if let problem = Self.checkConfigOutput(c, status: status, output: output, file: file.path) {
                wrong.append("#\(n) \(c)\n    → \(problem)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong (seed \(Self.seed)):\n\(wrong.prefix(15).joined(separator: "\n"))")
    }

    @Test("10,000 generated configuration files through the loader in-process: no crash, one-line problems with a path")
    func generatedConfigurationsInProcess() throws {
        var generator = FuzzConfigGenerator(seed: Self.seed ^ 0xC0FF_EE00)
        let loader = ConfigurationLoader(environment: FuzzConfigGenerator.environment, hostName: "fuzzhost")
        var wrong: [String] = []
        for (n, c) in generator.cases(10_000).enumerated() {
            let output: String
            let status: Int32
            do {
                let config = try loader.parse(yaml: c.text)
                (status, output) = (0, "f.yaml: OK (bridge \(config.bridgeID))\n")
            } catch {
                for p in error.problems where p.message.isEmpty || p.path.hasPrefix(" ") {
                    wrong.append(
                        "#\(n) \(c)\n    → a problem without a message or with a blank path: \(p.description.debugDescription)")
                }
                (status, output) = (1, error.problems.map { $0.description + "\n" }.joined())
            }
            if let problem = Self.checkConfigOutput(c, status: status, output: output, file: "f.yaml") {
                wrong.append("#\(n) \(c)\n    → \(problem)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong (seed \(Self.seed)):\n\(wrong.prefix(15).joined(separator: "\n"))")
    }

    /// What is wrong with check-config's answer to a case, or nil.
    static func checkConfigOutput(_ c: FuzzConfigCase, status: Int32, output: String, file: String) -> String? {
        guard status == 0 || status == 1 else { return "exit status \(status)\n\(output.suffix(2000))" }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast(output.hasSuffix("\n") ? 1 : 0)
        if status == 0 {
            guard lines.count == 1, lines[lines.startIndex].hasPrefix("\(file): OK") else {
                return "exit 0 but: \(output.prefix(500))"
            }
            return c.mustBeValid || c.expectedPath == nil ? nil : "accepted, but \(c.expectedPath!) is wrong"
        }
        if c.mustBeValid { return "refused a valid file: \(output.prefix(800))" }
        // `path: message`, or a problem with the whole file.
        let fileLevel = ["not valid YAML: ", "the configuration", "cannot read the configuration file "]
        for line in lines {
            let isProblem = line.range(of: ": ") != nil && !line.hasPrefix(" ") && !line.hasPrefix(": ")
            if !isProblem && !fileLevel.contains(where: { line.hasPrefix($0) }) {
                return "not a `path: problem` line: \(line.prefix(300).debugDescription)"
            }
        }
        if lines.isEmpty { return "exit 1 without a problem" }
        if c.expectedPath != nil, !lines.contains(where: c.names) {
            return "no line for \(c.expectedPath!):\n\(output.prefix(800))"
        }
        return nil
    }
}
