import HTTPClient
import IdlewatcherCore
import Logging

extension ProxmoxAPI {
    /// Waits for a task by polling its status on the node named in the UPID.
    /// Returns its exit status if it succeeded (or failed with a text `tolerating` accepts);
    /// throws `runtime_error` with Proxmox's text if it failed, `not_found` if it failed
    /// because the guest does not exist, `timeout` past `deadline`.
    @discardableResult
    func waitForTask(
        _ upid: UPID, vmid: Int, what: String, deadline: ContinuousClock.Instant, metadata: Logger.Metadata,
        tolerating: ((String) -> Bool)? = nil
    ) async throws -> String {
        let path = "/nodes/\(FormEncoding.percentEncode(upid.node))/tasks/\(FormEncoding.percentEncode(upid.text))/status"
        var delay = Duration.milliseconds(50)
        while true {
            let data = try await self.data("GET", path, doing: "read the task \(upid)", vmid: vmid, metadata: metadata)
            if data["status"]?.string == "stopped" {
                let exit = (data["exitstatus"]?.string ?? "").trimmingWhitespace()
                if ProxmoxTasks.succeeded(exit) || tolerating?(exit) == true {
                    logger.debug("\(upid.type) of guest \(vmid) ended: \(exit)", metadata: metadata)
                    return exit
                }
                if ProxmoxReply.isMissingConfiguration(exit) {
                    throw BridgeError(.notFound, "no guest \(vmid) on Proxmox at \(url) (\(exit))")
                }
                throw BridgeError(
                    .runtimeError, "\(what) failed: the \(upid.type) task said: \(exit.isEmpty ? "unknown error" : exit)")
            }
            if ContinuousClock.now + delay > deadline {
                throw BridgeError(
                    .timeout,
                    "\(what) did not finish in time: the \(upid.type) task \(upid) is still running on node \(upid.node)")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// The recent tasks of one guest on its node (running ones too).
    func tasks(of vmid: Int, node: String, metadata: Logger.Metadata = [:]) async throws -> [TaskRecord] {
        let data = try await self.data(
            "GET", "/nodes/\(FormEncoding.percentEncode(node))/tasks?vmid=\(vmid)&source=all&limit=50",
            doing: "list the tasks of guest \(vmid)", metadata: metadata)
        return (data.array ?? []).compactMap(TaskRecord.init(json:))
    }

    /// `/cluster/tasks`: running and recent tasks of every node, in one request.
    func clusterTasks(metadata: Logger.Metadata = [:]) async throws -> [TaskRecord] {
        let data = try await self.data("GET", "/cluster/tasks", doing: "list the cluster's tasks", metadata: metadata)
        return (data.array ?? []).compactMap(TaskRecord.init(json:))
    }
}
