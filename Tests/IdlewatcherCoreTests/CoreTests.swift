import Bridge
import BridgeConfig
import IdlewatcherCore
import Testing

@Suite("Durations, signals, timestamps")
struct VocabularyTests {
    @Test(
        "durations as the contract writes them",
        arguments: [
            ("500ms", 500), ("10s", 10_000), ("2m", 120_000), ("1h", 3_600_000), ("1h30m", 5_400_000), ("0s", 0),
            ("7d", 604_800_000), ("1d12h", 129_600_000),
        ])
    func durations(_ text: String, _ millis: Int64) {
        #expect(Duration(parsing: text)?.wholeMilliseconds == millis)
    }

    @Test("timestamps read back what the bridge writes, and RFC 3339 as people write it")
    func timestampsRoundTrip() throws {
        for ns: Int64 in [0, 1_796_185_977_342_188_000, 1_800_000_000_000_000_000, 951_782_400_123_456_000] {
            let t = Timestamp(nanoseconds: ns)
            #expect(Timestamp(rfc3339: t.rfc3339) == t, "\(t.rfc3339)")
        }
        #expect(Timestamp(rfc3339: "2026-12-02T10:00:00Z")?.rfc3339 == "2026-12-02T10:00:00.000000Z")
        #expect(Timestamp(rfc3339: "2026-12-02T11:30:00.5+01:30")?.rfc3339 == "2026-12-02T10:00:00.500000Z")
        for bad in [
            "", "2026-12-02", "2026-12-02T10:00:00", "2026-13-02T10:00:00Z", "2026-12-02T10:00:00Zx", "2026-12-02T10:00:00.Z",
        ] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
    }

    @Test("not durations", arguments: ["", "10", "s", "10x", "-1s", "1.5s", "99999999999999999999h"])
    func notDurations(_ text: String) {
        #expect(Duration(parsing: text) == nil)
    }

    @Test("signals by name, short name or number; nothing else")
    func signals() {
        #expect(Signal(parsing: "SIGTERM")?.number == 15)
        #expect(Signal(parsing: "term")?.number == 15)
        #expect(Signal(parsing: "9")?.name == "SIGKILL")
        #expect(Signal(parsing: "64")?.number == 64)
        #expect(Signal(parsing: "SIGFOO") == nil)
        #expect(Signal(parsing: "0") == nil)
        #expect(Signal(parsing: "65") == nil)
    }

    @Test("timestamps print as RFC 3339 UTC with microseconds")
    func timestamps() {
        #expect(Timestamp(nanoseconds: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp(nanoseconds: 1_795_730_100_123_456_789).rfc3339 == "2026-11-26T21:55:00.123456Z")
        #expect(Timestamp(seconds: 951_782_400).rfc3339 == "2000-02-29T00:00:00.000000Z")
    }
}

@Suite("JSON")
struct JSONTests {
    @Test("parses what Docker and commands send, with exact types")
    func parses() throws {
        let j = try JSON.parse(#"{"a":[1,2.5,-3e2],"b":"x\"\u00e9\ud83d\ude00","c":true,"d":null,"t":1795730100123456789}"#)
        #expect(j["a"]?.array?.count == 3)
        #expect(j["b"]?.string == "x\"é😀")
        #expect(j["c"]?.bool == true)
        #expect(j["d"] == .null)
        #expect(j["t"]?.int64 == 1_795_730_100_123_456_789)
        #expect(j["c"]?.string == nil)
    }

    @Test(
        "refuses what is not JSON",
        arguments: [
            "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\u{01}\"", "nul", "{} x", "\"\\ud800\"",
        ])
    func refuses(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }

    @Test("bounds nesting depth")
    func depth() {
        #expect(throws: JSONParseError.self) {
            try JSON.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100), maxDepth: 64)
        }
        #expect((try? JSON.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10))) != nil)
    }

    @Test("the writer escapes what JSON requires")
    func writer() throws {
        var w = JSONWriter()
        w.add("s", "a\"b\\c\n\u{01}é")
        w.add("n", nil as String?)
        w.add("m", ["k": "v"])
        let text = w.finish()
        #expect(text == #"{"s":"a\"b\\c\n\u0001é","n":null,"m":{"k":"v"}}"#)
        #expect(try JSON.parse(text)["s"]?.string == "a\"b\\c\n\u{01}é")
    }
}

@Suite("Command parsing")
struct CommandParsingTests {
    @Test("plain text, trimmed, any case")
    func text() throws {
        #expect(try Command.parse(Array(" Wake\n".utf8), runtime: .docker).get().action == .wake)
        #expect(try Command.parse(Array("STATUS".utf8), runtime: .proxmox).get().action == .status)
    }

    @Test("JSON with every option")
    func json() throws {
        let c = try Command.parse(
            Array(#"{"action":"stop","signal":"TERM","timeout":10,"request_id":"ha-1"}"#.utf8), runtime: .docker
        ).get()
        #expect(c.action == .stop)
        #expect(c.signal?.number == 15)
        #expect(c.timeout == .seconds(10))
        #expect(c.requestID == "ha-1")
    }

    @Test(
        "rejections carry the contract's code and the request id",
        arguments: [
            (#"{"action":"stop","signal":"TERM"}"#, RuntimeDescription.proxmox, ErrorCode.badRequest),
            (#"{"action":"kill","signal":15}"#, RuntimeDescription.proxmox, ErrorCode.badRequest),
            (#"{"action":"jump","request_id":"r"}"#, RuntimeDescription.docker, ErrorCode.unknownAction),
            (#"{"action":"stop","timeout":3601,"request_id":"r"}"#, RuntimeDescription.docker, ErrorCode.badRequest),
            (#"{"action":"start","timeout":5,"request_id":"r"}"#, RuntimeDescription.podman, ErrorCode.badRequest),
            ("", RuntimeDescription.docker, ErrorCode.badRequest),
        ])
    func rejections(_ payload: String, _ runtime: RuntimeDescription, _ code: ErrorCode) {
        switch Command.parse(Array(payload.utf8), runtime: runtime) {
        case .success:
            Issue.record("accepted \(payload)")
        case .failure(let r):
            #expect(r.error.code == code)
            if payload.contains("request_id") { #expect(r.requestID == "r") }
        }
    }

    @Test(
        "restart takes a timeout on every runtime (Proxmox: status/reboot with timeout)",
        arguments: [
            RuntimeDescription.docker, .podman, .proxmox,
        ])
    func restartTimeout(_ runtime: RuntimeDescription) throws {
        let c = try Command.parse(Array(#"{"action":"restart","timeout":5}"#.utf8), runtime: runtime).get()
        #expect(c.action == .restart)
        #expect(c.timeout == .seconds(5))
    }

    @Test("signal applies to stop and kill on Docker and Podman", arguments: [RuntimeDescription.docker, .podman])
    func signals(_ runtime: RuntimeDescription) throws {
        #expect(try Command.parse(Array(#"{"action":"kill","signal":"HUP"}"#.utf8), runtime: runtime).get().signal?.number == 1)
        #expect(try Command.parse(Array(#"{"action":"stop","signal":15}"#.utf8), runtime: runtime).get().signal?.number == 15)
        guard case .failure(let r) = Command.parse(Array(#"{"action":"pause","signal":15}"#.utf8), runtime: runtime) else {
            Issue.record("pause accepted a signal")
            return
        }
        #expect(r.error.code == .badRequest)
    }

    @Test("invalid UTF-8 and oversized payloads are bad requests")
    func bytes() {
        if case .failure(let r) = Command.parse([0xFF, 0xFE], runtime: .docker) {
            #expect(r.error.code == .badRequest)
        } else {
            Issue.record("accepted")
        }
        if case .failure(let r) = Command.parse(Array(repeating: 0x20, count: 4097), runtime: .docker) {
            #expect(r.error.message.contains("4096"))
        } else {
            Issue.record("accepted")
        }
    }
}

@Suite("Exposure policy")
struct ExposurePolicyTests {
    @Test("labels hide, narrow and time")
    func labels() {
        let p = ExposurePolicy(include: [], exclude: ["db"], allow: [.start, .wake, .stop, .status], stopTimeout: .seconds(10))
        #expect(p.isVisible(name: "web", labels: [:]))
        #expect(!p.isVisible(name: "db", labels: [:]))
        #expect(!p.isVisible(name: "web", labels: ["idlewatcher.enable": "False"]))
        #expect(p.allowedActions(name: "web", labels: ["idlewatcher.allow": "wake, kill ,status"]) == [.wake, .status])
        #expect(p.stopTimeout(labels: ["idlewatcher.stop_timeout": "30s"]) == .seconds(30))
        #expect(p.stopTimeout(labels: ["idlewatcher.stop_timeout": "soon"]) == .seconds(10))
        // The label has the config key's limit: more than 1h is ignored, with a word why.
        #expect(p.stopTimeout(labels: ["idlewatcher.stop_timeout": "1h"]) == .seconds(3600))
        #expect(p.stopTimeout(labels: ["idlewatcher.stop_timeout": "2h"]) == .seconds(10))
        #expect(
            ExposurePolicy.labelProblems(["idlewatcher.stop_timeout": "2h"])
                == ["idlewatcher.stop_timeout=2h: at most 1h, as defaults.stop_timeout; the default applies"])
    }
}

@Suite("Configuration loading")
struct ConfigurationLoadingTests {
    let loader = ConfigurationLoader(environment: ["IDLEWATCHER_MQTT_PASSWORD": "pw"], hostName: "myhost")

    @Test("defaults follow the contract")
    func defaults() throws {
        let c = try ConfigurationLoader(environment: [:], hostName: "myhost").parse(
            yaml: "docker:\n  - url: unix:///var/run/docker.sock\n")
        #expect(c.bridgeID == "myhost")
        #expect(c.mqtt.host == "127.0.0.1" && c.mqtt.port == 1883)
        #expect(c.mqtt.baseTopic == "idlewatcher")
        #expect(c.mqtt.clientID == "idlewatcher-bridge-myhost")
        #expect(c.defaults.stopTimeout == .seconds(10))
        #expect(c.defaults.allow.count == 8)
        #expect(c.homeAssistant.enabled && c.homeAssistant.prefix == "homeassistant")
    }

    @Test("mqtts, protocol 3.1.1 and a password from the environment")
    func mqtt() throws {
        let c = try loader.parse(
            yaml: "mqtt:\n  url: mqtts://broker.lan\n  protocol: 3.1.1\n  username: u\ndocker: [{url: 'tcp://h:2375'}]")
        #expect(c.mqtt.tls && c.mqtt.port == 8883 && c.mqtt.host == "broker.lan")
        #expect(c.mqtt.protocolVersion == "3.1.1")
        #expect(c.mqtt.password == "pw")
    }
}
