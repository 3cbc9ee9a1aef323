import Bridge
import IdlewatcherCore
import Testing

/// What a person reads in a `bad_request` reply: what is allowed and what came, in the
/// command's own words, and the reply names the action and request id whenever they could be read.
@Suite("Command parsing: messages a person can act on")
struct CommandMessageTests {
    func rejection(_ payload: String, _ runtime: RuntimeDescription = .docker) -> Command.Rejection? {
        guard case .failure(let r) = Command.parse(Array(payload.utf8), runtime: runtime) else {
            Issue.record("accepted \(payload)")
            return nil
        }
        return r
    }

    @Test(
        "each bad value is named with what is allowed",
        arguments: [
            (#"{"action":"stop","timeout":3601}"#, "timeout: whole seconds from 0 to 3600, got 3601"),
            (#"{"action":"stop","timeout":1.5}"#, "timeout: whole seconds from 0 to 3600, got 1.5"),
            (#"{"action":"stop","timeout":-1}"#, "timeout: whole seconds from 0 to 3600, got -1"),
            (#"{"action":"stop","timeout":1e3}"#, "timeout: whole seconds from 0 to 3600, got 1e3"),
            (#"{"action":"stop","timeout":null}"#, "timeout: whole seconds from 0 to 3600, got null"),
            (
                #"{"action":"stop","timeout":"10"}"#,
                #"timeout: whole seconds from 0 to 3600, got "10" (a string; write the number without quotes)"#
            ),
            (#"{"action":"stop","timeout":[10]}"#, "timeout: whole seconds from 0 to 3600, got an array"),
            (#"{"action":"kill","signal":65}"#, "signal: a name like SIGTERM or TERM, or a number from 1 to 64, got 65"),
            (#"{"action":"kill","signal":0}"#, "signal: a name like SIGTERM or TERM, or a number from 1 to 64, got 0"),
            (
                #"{"action":"kill","signal":"SIGFOO"}"#,
                #"signal: a name like SIGTERM or TERM, or a number from 1 to 64, got "SIGFOO""#
            ),
            (#"{"action":"kill","signal":"65"}"#, #"signal: a name like SIGTERM or TERM, or a number from 1 to 64, got "65""#),
            (#"{"action":"kill","signal":true}"#, "signal: a name like SIGTERM or TERM, or a number from 1 to 64, got true"),
            (#"{"action":"stop","request_id":5}"#, "request_id: a string of at most 128 characters, got 5"),
            (#"{"action":42}"#, "action: one of start, wake, stop, pause, unpause, kill, restart, status, got 42"),
            (#"["stop"]"#, #"a JSON command must be an object such as {"action":"stop"}, got an array"#),
        ])
    func messages(_ payload: String, _ expected: String) {
        guard let r = rejection(payload) else { return }
        #expect(r.error.code == .badRequest)
        #expect(r.error.message == expected)
    }

    @Test("no message quotes Swift's own words for a value")
    func noSwiftInternals() {
        let payloads = [
            #"{"action":"stop","timeout":3601}"#, #"{"action":"stop","timeout":1.5}"#, #"{"action":"kill","signal":65}"#,
            #"{"action":"kill","signal":{"n":1}}"#, #"{"action":"stop","request_id":{"a":1}}"#, #"{"action":["stop"]}"#,
            #"{"action":"stop","timeout":{"s":1}}"#, #"{"action":"stop","timeout":false}"#,
        ]
        for p in payloads {
            guard let m = rejection(p)?.error.message else { continue }
            for word in ["number(", "string(", "object(", "array(", "bool(", "Optional", "JSON."] {
                #expect(!m.contains(word), "\(p) → \(m)")
            }
        }
    }

    @Test("a request id too long is named by its length, not quoted")
    func longRequestID() {
        let r = rejection("{\"action\":\"stop\",\"request_id\":\"" + String(repeating: "x", count: 129) + "\"}")
        #expect(r?.error.message == "request_id: a string of at most 128 characters, got a string of 129 characters")
    }

    @Test(
        "the reply names the action whenever one could be read",
        arguments: [
            (#"{"action":"stop","request_id":5}"#, "stop"),
            ("{\"action\":\"stop\",\"request_id\":\"" + String(repeating: "x", count: 129) + "\"}", "stop"),
            (#"{"request_id":["r"],"action":" Kill "}"#, "kill"),
            (#"{"action":"stop","timeout":3601}"#, "stop"),
            (#"{"action":"kill","signal":65}"#, "kill"),
            (#"{"action":"stop","force":true}"#, "stop"),
            (#"{"action":"jump","request_id":5}"#, "jump"),
        ])
    func actionEchoed(_ payload: String, _ action: String) {
        #expect(rejection(payload)?.action == action)
    }

    @Test(
        "the reply names the request id whenever it is valid, whatever else is wrong",
        arguments: [
            #"{"action":42,"request_id":"r"}"#, #"{"request_id":"r"}"#, #"{"action":"jump","request_id":"r"}"#,
            #"{"action":"stop","timeout":1.5,"request_id":"r"}"#, #"{"request_id":"r","action":"pause","signal":9}"#,
        ])
    func requestIDEchoed(_ payload: String) {
        #expect(rejection(payload)?.requestID == "r")
    }

    @Test("an action that cannot be read leaves the reply's action null")
    func noAction() {
        #expect(rejection(#"{"action":42}"#)?.action == nil)
        #expect(rejection(#"{"request_id":"r"}"#)?.action == nil)
        #expect(rejection(#"{"action":"stop""#)?.action == nil, "not JSON: nothing can be read")
    }

    @Test("a key that does not apply names the runtime as people know it")
    func notApplicable() {
        #expect(
            rejection(#"{"action":"stop","signal":"TERM"}"#, .proxmox)?.error.message
                == "signal does not apply to stop on Proxmox")
        #expect(
            rejection(#"{"action":"pause","signal":9}"#, .podman)?.error.message == "signal does not apply to pause on Podman")
    }
}
