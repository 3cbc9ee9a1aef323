import HTTPClient
import IdlewatcherCore
import Logging

/// How requests prove who they are: an API token header, or a ticket cookie with its CSRF
/// token on writes.
///
/// Tickets live two hours; this renews one once it is `ticketRenewal` old (an hour by
/// default) by posting it as the password, as the Proxmox GUI does, and logs in again with
/// the password when Proxmox rejects it. Concurrent requests share one login. Neither the
/// secret, the password nor the ticket ever reaches a message or a log line.
actor ProxmoxAuth {
    /// The headers of one request, and which ticket they carry (to tell a stale rejection).
    struct Credentials: Sendable {
        var headers: [(String, String)]
        var generation: Int
    }

    private enum Mode {
        case token(id: String, header: String)
        case password(username: String, password: String, realm: String?)
    }

    private struct Session {
        var username: String
        var ticket: String
        var csrf: String
        var obtained: ContinuousClock.Instant
        var generation: Int
    }

    /// Proxmox refuses a ticket older than this.
    static let ticketLifetime = Duration.seconds(7200)

    private let mode: Mode
    private let renewal: Duration
    private let transport: ProxmoxTransport
    private nonisolated var failures: ProxmoxFailures { transport.failures }
    private let logger: Logger
    private var session: Session?
    private var pending: Task<Session, any Error>?
    private var generation = 0

    init(configuration: ProxmoxEndpointConfiguration, transport: ProxmoxTransport, logger: Logger) {
        switch configuration.credentials {
        case .token(let id, let secret):
            mode = .token(id: id, header: "PVEAPIToken=\(id)=\(secret)")
        case .password(let username, let password, let realm):
            mode = .password(username: username, password: password, realm: realm)
        }
        renewal = min(configuration.ticketRenewal, Self.ticketLifetime - .seconds(300))
        self.transport = transport
        self.logger = logger
    }

    /// The headers for the next request, logging in or renewing the ticket first if needed.
    func credentials(forWrite: Bool) async throws -> Credentials {
        switch mode {
        case .token(_, let header):
            return Credentials(headers: [("Authorization", header)], generation: 0)
        case .password:
            let s = try await currentSession()
            var headers = [("Cookie", "PVEAuthCookie=" + s.ticket)]
            if forWrite { headers.append(("CSRFPreventionToken", s.csrf)) }
            return Credentials(headers: headers, generation: s.generation)
        }
    }

    /// Proxmox answered 401 to a request made with `credentials`. True when a retry may
    /// succeed: with a ticket, the next request logs in again.
    func rejected(_ credentials: Credentials) -> Bool {
        guard case .password = mode else { return false }
        if session?.generation == credentials.generation {
            logger.info("Proxmox at \(failures.url) rejected the ticket; logging in again")
            session = nil
        }
        return true
    }

    /// The error of a final 401: what to check, never the secret.
    nonisolated func failure(reason: String) -> BridgeError {
        let said = "Proxmox at \(failures.url) answered 401" + (reason.isEmpty ? "" : " \(reason)")
        switch mode {
        case .token(let id, _):
            return BridgeError(
                .unavailable, "authentication failed: check token_id and the token secret (\(said) for token \(id))")
        case .password(let username, _, _):
            return BridgeError(
                .unavailable, "authentication failed: check username, realm and the password (\(said) for \(username))")
        }
    }

    private func currentSession() async throws -> Session {
        if let s = session, ContinuousClock.now - s.obtained < renewal { return s }
        if let pending { return try await pending.value }
        let previous = session
        let task = Task { try await self.logIn(renewing: previous) }
        pending = task
        defer { pending = nil }
        let s = try await task.value
        session = s
        return s
    }

    private func logIn(renewing previous: Session?) async throws -> Session {
        guard case .password(let username, let password, let realm) = mode else {
            preconditionFailure("logIn is for ticket auth")
        }
        if let old = previous, ContinuousClock.now - old.obtained < Self.ticketLifetime - .seconds(60) {
            do {
                let s = try await postTicket([("username", old.username), ("password", old.ticket)])
                logger.debug("renewed the Proxmox ticket for \(s.username)")
                return s
            } catch is TicketRefused {
                logger.info("Proxmox at \(failures.url) refused to renew the ticket; logging in with the password")
            }
        }
        var form = [("username", username), ("password", password)]
        // Proxmox appends `@realm` to the user name it is given: only for a bare user name.
        if let realm, !username.contains("@") { form.append(("realm", realm)) }
        do {
            let s = try await postTicket(form)
            logger.info("logged in to Proxmox at \(failures.url) as \(s.username)")
            return s
        } catch let refused as TicketRefused {
            throw failure(reason: refused.reason)
        }
    }

    /// `/access/ticket` answered 401.
    private struct TicketRefused: Error {
        var reason: String
    }

    /// `POST /access/ticket`. The form holds a secret: it is never logged.
    private func postTicket(_ form: [(String, String)]) async throws -> Session {
        let reply = try await transport.exchange("POST", "/access/ticket", form: form)
        if reply.status == 401 { throw TicketRefused(reason: reply.reason) }
        guard reply.ok else { throw failures.failure(reply, doing: "log in", vmid: nil) }
        guard let data = reply.data, let ticket = data["ticket"]?.string, let csrf = data["CSRFPreventionToken"]?.string,
            let user = data["username"]?.string
        else {
            throw BridgeError(.runtimeError, "Proxmox at \(failures.url) sent an unreadable /access/ticket answer")
        }
        generation += 1
        return Session(username: user, ticket: ticket, csrf: csrf, obtained: .now, generation: generation)
    }
}
