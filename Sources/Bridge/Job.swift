import IdlewatcherCore
import Synchronization

/// One operation waiting or running for one container; several `wake`s may share it, and
/// each of their requesters gets a reply of its own.
final class Job: Sendable {
    /// Someone waiting for this job's reply: the MQTT intake, or a part of the process.
    struct Requester: Sendable {
        var requestID: String?
        var deliver: @Sendable (Reply) -> Void
    }

    let command: Command
    let endpoint: Int
    let id: String
    // Guarded: requesters are added while the job waits or runs, read once when it ends.
    private let state = Mutex<(requesters: [Requester], finished: Bool)>(([], false))

    init(command: Command, endpoint: Int, id: String, requester: Requester) {
        self.command = command
        self.endpoint = endpoint
        self.id = id
        state.withLock { $0.requesters = [requester] }
    }

    /// Adds a requester to a job that has not finished; false if it has.
    func join(_ requester: Requester) -> Bool {
        state.withLock { s in
            guard !s.finished else { return false }
            s.requesters.append(requester)
            return true
        }
    }

    /// Closes the job to joiners and returns everyone to reply to.
    func finish() -> [Requester] {
        state.withLock { s in
            s.finished = true
            return s.requesters
        }
    }
}
