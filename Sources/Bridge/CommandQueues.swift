import IdlewatcherCore
import Synchronization

/// Where a reply goes: the reply topic, or a Response Topic with its Correlation Data.
struct ReplyTarget: Sendable {
    var topic: String
    var correlationData: [UInt8]?
    var requestID: String?
    var receivedAt: ContinuousClock.Instant
}

/// One operation waiting or running for one container; several `wake`s may share it.
final class Job: Sendable {
    let command: Command
    let endpoint: Int
    let id: String
    // Guarded: targets are added while the job waits or runs, read once when it ends.
    private let state = Mutex<(targets: [ReplyTarget], finished: Bool)>(([], false))

    init(command: Command, endpoint: Int, id: String, target: ReplyTarget) {
        self.command = command
        self.endpoint = endpoint
        self.id = id
        state.withLock { $0.targets = [target] }
    }

    /// Adds a requester to a job that has not finished; false if it has.
    func join(_ target: ReplyTarget) -> Bool {
        state.withLock { s in
            guard !s.finished else { return false }
            s.targets.append(target)
            return true
        }
    }

    /// Closes the job to joiners and returns everyone to reply to.
    func finish() -> [ReplyTarget] {
        state.withLock { s in
            s.finished = true
            return s.targets
        }
    }
}

/// Per-container FIFO queues: one command at a time per container, in arrival order; other
/// containers run concurrently. Concurrent `wake`s of one container share one operation.
final class CommandQueues: Sendable {
    struct Key: Hashable, Sendable {
        var endpoint: Int
        var id: String
    }

    enum Admission {
        /// Queued; the caller must start a worker for this key.
        case startWorker
        /// Queued behind others; a worker is already running.
        case queued
        /// Joined a wake that is waiting or running.
        case joined
        /// The queue is full.
        case full
    }

    /// Present exactly while a worker runs for its key: `head` removes it, atomically with
    /// finding it empty, and that ends the worker. (When `pop` removed it instead, a command
    /// admitted between the worker's `pop` and its next `head` started a second worker, and both
    /// ran that command: found by the fuzz test as a command answered twice.)
    private struct Queue {
        var jobs: [Job] = []  // jobs[0] is running (or about to)
    }

    private let queues = Mutex<[Key: Queue]>([:])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func admit(_ job: Job, target: ReplyTarget) -> Admission {
        let key = Key(endpoint: job.endpoint, id: job.id)
        return queues.withLock { all in
            var q = all[key] ?? Queue()
            if job.command.action == .wake, let last = q.jobs.last, last.command.action == .wake, last.join(target) {
                return .joined
            }
            guard q.jobs.count < limit else { return .full }
            let hasWorker = all[key] != nil
            q.jobs.append(job)
            all[key] = q
            return hasWorker ? .queued : .startWorker
        }
    }

    /// The job at the head of the queue, or nil (and the queue is removed): the worker ends.
    func head(_ key: Key) -> Job? {
        queues.withLock { all in
            guard let first = all[key]?.jobs.first else {
                all.removeValue(forKey: key)
                return nil
            }
            return first
        }
    }

    /// Removes the finished head (the queue stays until its worker's next `head`).
    func pop(_ key: Key) {
        queues.withLock { all in
            guard var q = all[key], !q.jobs.isEmpty else { return }
            q.jobs.removeFirst()
            all[key] = q
        }
    }

    var isEmpty: Bool { queues.withLock { $0.isEmpty } }
}
