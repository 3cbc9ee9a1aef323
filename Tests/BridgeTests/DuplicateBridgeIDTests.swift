import Foundation
import IdlewatcherTesting
import Testing

/// Two bridges started with one configuration (the same `bridge.id`, so the same default
/// client id) on one broker: the broker hands the session to whichever connected last. Each
/// bridge must say what is wrong, stop fighting for the session, keep its memory, and still stop
/// on SIGTERM. Before: both reconnected every few milliseconds, each time publishing every
/// status again; memory grew by about 1 MiB a second, and SIGTERM never ended them.
@Suite("Two bridges with one bridge.id")
struct DuplicateBridgeIDTests {
    @Test("both say another client uses their client id, then retry every 30 s; memory stays; SIGTERM stops both")
    func sameID() async throws {
        try await withEnvironment { env in
            let names = try (0..<20).map { try env.docker.run("dup\($0)") }
            let id = "dup\(UUID().uuidString.prefix(6).lowercased())"
            // No client_id: both take the default, idlewatcher-bridge-<id>, as a copied file would.
            let yaml = """
                bridge:
                  id: \(id)
                mqtt:
                  url: \(env.broker.url)
                docker:
                  - url: unix:///var/run/docker.sock
                    include: [\(names.joined(separator: ", "))]
                """
            let a = try BridgeProcess(yaml: yaml, bridgeID: id)
            try await eventually("the first bridge online") { a.log.contains("connected to the MQTT broker") }
            let b = try BridgeProcess(yaml: yaml, bridgeID: id)
            let hint = "Another client may be using the client id 'idlewatcher-bridge-\(id)'"
            try await eventually("one of them says so and waits 30 s", timeout: .seconds(20)) {
                (a.log + b.log).contains("; reconnecting in 30 s. \(hint)")
            }
            let memory = [a, b].map { ProcessMemory(pid: $0.child.pid)?.resident ?? 0 }
            let connects = { [a, b].map { $0.log.components(separatedBy: "connected to the MQTT broker").count - 1 } }
            let before = connects()
            try await Task.sleep(for: .seconds(12))  // the window watched, not a synchronisation
            let after = connects()
            // At most a handful of sessions in 12 s: the waiting bridge tries again after 30 s
            // (the other may be taken over once more by a last attempt). Before: hundreds.
            let more = zip(after, before).map { $0 - $1 }
            #expect(more.reduce(0, +) <= 4, "sessions begun in 12 s: \(more)")
            for (p, rss) in zip([a, b], memory) {
                let now = ProcessMemory(pid: p.child.pid)?.resident ?? .max
                #expect(now - rss < 4 * ProcessMemory.mebibyte, "RSS \(rss / 1024) → \(now / 1024) kB")
            }
            // Both stop on SIGTERM, cleanly (terminate falls back to SIGKILL after 10 s).
            let codes = [await a.child.terminate(timeout: .seconds(10)), await b.child.terminate(timeout: .seconds(10))]
            #expect(codes == [0, 0], "exit codes \(codes)")
        }
    }
}
