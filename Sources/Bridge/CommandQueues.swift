import IdlewatcherCore
import Synchronization

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

    func admit(_ job: Job, requester: Job.Requester) -> Admission {
        let key = Key(endpoint: job.endpoint, id: job.id)
        return queues.withLock { all in
            var q = all[key] ?? Queue()
            if job.command.action == .wake, let last = q.jobs.last, last.command.action == .wake, last.join(requester) {
                return .joined
            }
            // jobs[0] runs; the rest wait. `limit` is how many may wait (the running one aside).
            guard q.jobs.count <= limit else { return .full }
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
