import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import Testing

/// QEMU VMs beside CTs, over MQTT, on a simulated cluster whose `/cluster/resources` lags
/// like pvestatd's (`--resources-lag`): what a user of `proxmox[].types: [lxc, qemu]` sees.
extension ProxmoxProviderTests {
    @Suite struct VirtualMachines {
        /// CT 100 (running); VMs 101 (paused), 102 (stopped), 103 (a template), 104 (running,
        /// no guest agent). VM agents answer 1 s after boot; pvestatd updates every 3 s.
        static let cluster = [
            "--vms", "4", "--vms-paused", "1", "--vms-stopped", "1", "--vm-templates", "1", "--vms-without-agent", "1",
            "--agent-delay", "1", "--agent-timeout", "0.3", "--resources-lag", "3",
        ]

        static func withVMBridge(
            types: String? = "types: [lxc, qemu]", homeAssistant: Bool = false, _ body: (ProxmoxBridge) async throws -> Void
        ) async throws {
            try await withBridge(
                .httpsTrustedCAWithToken, cts: 1, simulator: Self.cluster, entry: types ?? "", homeAssistant: homeAssistant,
                body)
        }

        func vm(_ env: ProxmoxBridge, _ vmid: Int) async throws -> [String: Any] {
            try await env.sim.sim("GET", "/vm/\(vmid)") as! [String: Any]
        }

        func code(_ reply: ObservedMessage) -> String? { (reply.json?["error"] as? [String: Any])?["code"] as? String }

        @Test("VMs and CTs on one cluster: listed with their type, paused VMs paused, templates never exposed")
        func listing() async throws {
            try await Self.withVMBridge { env in
                for (id, status, type) in [
                    ("100", "running", "lxc"), ("101", "paused", "qemu"), ("102", "stopped", "qemu"), ("104", "running", "qemu"),
                ] {
                    try await env.waitForStatus(id, status)
                    let last = env.observer.messages(on: env.topic(id, "status")).last
                    #expect(last?.string("type") == type, "\(id): \(last?.payload ?? "nothing")")
                }
                // The resync published every status together, 103's between 102's and 104's: a template has none.
                #expect(env.observer.messages(on: env.topic("103", "status")).isEmpty)
                let template = try await env.command("103", ["action": "wake"])
                #expect(code(template) == "not_found", "\(template.payload)")
                #expect(template.payload.contains("template"), "\(template.payload)")
                #expect(try await vm(env, 103)["status"] as? String == "stopped")
            }
        }

        @Test("every command on a VM: start waits for the guest agent's address, suspend pauses, shutdown stops, stop kills")
        func commands() async throws {
            try await Self.withVMBridge { env in
                try await env.waitForStatus("102", "stopped")
                let woke = try await env.command("102", ["action": "wake"])
                #expect(woke.json?["ok"] as? Bool == true, "\(woke.payload)")
                #expect(woke.json?["ready"] as? Bool == true, "ready once the agent reports an address: \(woke.payload)")
                let afterWake = try await vm(env, 102)
                #expect(afterWake["status"] as? String == "running")
                #expect(afterWake["ready"] as? Bool == true, "the reply came only once the guest had its address: \(afterWake)")

                let steps: [(action: String, extra: [String: Any], status: String, qmp: String)] = [
                    ("pause", [:], "paused", "paused"), ("unpause", [:], "running", "running"),
                    ("stop", ["timeout": 1], "stopped", "stopped"), ("start", [:], "running", "running"),
                    ("kill", [:], "stopped", "stopped"),
                ]
                for step in steps {
                    let reply = try await env.command("102", ["action": step.action].merging(step.extra) { a, _ in a })
                    #expect(reply.json?["ok"] as? Bool == true, "\(step.action): \(reply.payload)")
                    #expect(reply.string("status") == step.status, "\(step.action): \(reply.payload)")
                    #expect(try await vm(env, 102)["qmpstatus"] as? String == step.qmp, "\(step.action)")
                }
                try await env.waitForStatus("102", "stopped")
                let types = try await env.sim.taskTypes(102)
                #expect(
                    Array(types.prefix(6).reversed()) == ["qmstart", "qmpause", "qmresume", "qmshutdown", "qmstart", "qmstop"],
                    "\(types)")
                let events = env.observer.messages(on: env.topic("102", "event"))
                #expect(events.compactMap { $0.string("action") } == ["start", "pause", "unpause", "stop", "start", "stop"])
                #expect(events.allSatisfy { $0.string("type") == "qemu" }, "\(events.map(\.payload))")

                // A paused VM refuses a shutdown, so a restart resumes it first; a signal does not apply.
                try await env.waitForStatus("101", "paused")
                let restart = try await env.command("101", ["action": "restart", "timeout": 5])
                #expect(restart.json?["ok"] as? Bool == true, "\(restart.payload)")
                #expect(restart.string("status") == "running", "\(restart.payload)")
                #expect(try await vm(env, 101)["qmpstatus"] as? String == "running")
                let signal = try await env.command("104", ["action": "kill", "signal": "SIGKILL"])
                #expect(code(signal) == "bad_request", "\(signal.payload)")
                #expect(try await vm(env, 104)["status"] as? String == "running")

                // A VM without the agent is ready when it runs (nothing else can tell).
                let noAgent = try await env.command("104", ["action": "wake"])
                #expect(noAgent.json?["ok"] as? Bool == true && noAgent.json?["ready"] as? Bool == true, "\(noAgent.payload)")
            }
        }

        @Test(
            "a change made in Proxmox (GUI, qm) reaches MQTT from /cluster/tasks with its actor; one inside the guest from pvestatd"
        )
        func outsideChanges() async throws {
            try await Self.withVMBridge { env in
                try await env.waitForStatus("104", "running")
                try await env.waitForStatus("100", "running")
                try await env.sim.resetStats()
                let gui = try await env.sim.sim("POST", "/vm/104/action/shutdown") as! [String: Any]
                let upid = gui["upid"] as? String
                let stop = try await env.observer.waitFor(env.topic("104", "event")) { $0.string("action") == "stop" }
                let attributes = stop.json?["attributes"] as? [String: Any]
                #expect(attributes?["user"] as? String == "root@pam", "\(stop.payload)")
                #expect(attributes?["upid"] as? String == upid, "\(stop.payload)")
                #expect(attributes?["task"] as? String == "qmshutdown", "\(stop.payload)")
                #expect(stop.string("type") == "qemu" && stop.string("status") == "stopped")
                let stats = try await env.sim.stats()
                #expect(
                    Set(stats.keys).isSubset(of: [
                        "GET /cluster/resources", "GET /cluster/tasks", "GET /nodes/{node}/qemu/{vmid}/status/current",
                    ]), "no task list per guest, nothing else: \(stats)")

                // A CT suspended from the GUI reads stopped; the cluster's task list says paused.
                let suspend = try await env.sim.sim("POST", "/ct/100/action/suspend") as! [String: Any]
                let paused = try await env.observer.waitFor(env.topic("100", "event")) { $0.string("action") == "pause" }
                #expect((paused.json?["attributes"] as? [String: Any])?["upid"] as? String == suspend["upid"] as? String)
                try await env.waitForStatus("100", "paused")

                // Booted from inside (no task): only pvestatd's next update tells, and no actor.
                try await env.sim.sim("POST", "/vm/104", ["status": "running"])
                let start = try await env.observer.waitFor(env.topic("104", "event")) { $0.string("action") == "start" }
                #expect((start.json?["attributes"] as? [String: Any])?["upid"] == nil, "\(start.payload)")
                try await env.waitForStatus("104", "running")
            }
        }

        @Test("types default to [lxc]: VMs are not exposed, and a command for one says how to expose it")
        func lxcOnlyByDefault() async throws {
            try await Self.withVMBridge(types: nil) { env in
                try await env.waitForStatus("100", "running")
                // The resync published every status at once: the VMs have none.
                for id in ["101", "102", "104"] { #expect(env.observer.messages(on: env.topic(id, "status")).isEmpty) }
                let reply = try await env.command("104", ["action": "stop"])
                #expect(code(reply) == "not_found", "\(reply.payload)")
                #expect(reply.payload.contains("add qemu to proxmox[].types"), "\(reply.payload)")
                #expect(try await vm(env, 104)["status"] as? String == "running")
            }
        }

        @Test("Home Assistant: a VM's device says QEMU VM, a CT's LXC container, with the node")
        func homeAssistantDevices() async throws {
            try await Self.withVMBridge(homeAssistant: true) { env in
                let node = "idlewatcher_\(env.bridgeID)"
                for (id, model) in [("100", "LXC container on pve1"), ("104", "QEMU VM on pve1")] {
                    let config = try await env.observer.waitFor("homeassistant/sensor/\(node)/proxmox_\(id)_status/config")
                    let device = config.json?["device"] as? [String: Any]
                    #expect(device?["model"] as? String == model, "\(config.payload)")
                }
            }
        }
    }
}
