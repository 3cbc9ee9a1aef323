import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import ProxmoxProvider
import Testing

extension ProxmoxProviderTests {
    @Suite struct Authentication {
        @Test func ticketAuthRunsEveryOperationWithTheCSRFToken() async throws {
            try await withSimulator(.https) { sim in
                let logs = LogRecorder()
                let runtime = try sim.runtime(auth: .ticket, logs: logs)
                try await exerciseEveryOperation(runtime, sim)
                #expect(try await sim.stats()["POST /access/ticket"] == 1)
                await runtime.close()
                let ticketLike = logs.all.filter { $0.contains("PVE:") || $0.contains(PVESimulator.password) }
                #expect(ticketLike.isEmpty, "\(ticketLike)")
            }
        }

        @Test func anExpiredTicketIsRenewedWithoutAFailedOperation() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(auth: .ticket)
                let p = runtime.provider(for: "101")
                #expect(try await p.status() == .running)
                try await sim.sim("POST", "/tickets/expire")
                // A write first: the rejected ticket (and its CSRF token) are replaced, the stop goes through.
                try await p.stop(signal: nil, timeout: .seconds(2))
                #expect(try await p.status() == .stopped)
                try await sim.sim("POST", "/tickets/expire")
                #expect(try await p.status() == .stopped)
                #expect(try await sim.stats()["POST /access/ticket"] == 3)
                await runtime.close()
            }
        }

        @Test func aTicketIsRenewedBeforeItExpires() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(auth: .ticket, ticketRenewal: .milliseconds(200))
                let p = runtime.provider(for: "101")
                // Every status read succeeds while the ticket is renewed (with itself) in the background of requests.
                try await eventually("two renewals") {
                    #expect(try await p.status() == .running)
                    return try await sim.stats()["POST /access/ticket", default: 0] >= 3
                }
                await runtime.close()
            }
        }

        @Test func aBadTokenIsUnavailableWithAClearMessageAndNoSecret() async throws {
            try await withSimulator(.https) { sim in
                let logs = LogRecorder()
                let runtime = try sim.runtime(auth: .badToken, logs: logs)
                let e = await expectError(.unavailable) { _ = try await runtime.containers() }
                let message = e?.message ?? ""
                #expect(message.hasPrefix("authentication failed: check token_id and the token secret"), "\(message)")
                #expect(message.contains("401 Authentication failed! for token root@pam!bridge"), "\(message)")
                #expect(message.contains(sim.url), "\(message)")
                await expectError(.unavailable) { try await runtime.provider(for: "101").start() }

                try await watching(runtime) { updates in
                    try await eventually("unavailable from the watcher") { updates.count >= 1 }
                    #expect(updates.unavailable.first?.message == message)
                }
                await runtime.close()
                for text in [message] + logs.all {
                    #expect(!text.contains(sim.secret), "the secret leaked: \(text)")
                }
            }
        }

        @Test func aWrongPasswordIsUnavailableAndNeverPrinted() async throws {
            try await withSimulator(.https) { sim in
                let logs = LogRecorder()
                let runtime = try sim.runtime(auth: .badPassword, logs: logs)
                let e = await expectError(.unavailable) { _ = try await runtime.provider(for: "101").status() }
                #expect(
                    e?.message.hasPrefix("authentication failed: check username, realm and the password") == true,
                    "\(String(describing: e))")
                #expect(e?.message.contains("root@pam") == true)
                await runtime.close()
                for text in [e?.message ?? ""] + logs.all {
                    #expect(!text.contains("wrong-\(sim.secret)"), "the password leaked: \(text)")
                }
            }
        }
    }
}
