import Testing

@testable import MQTTClient

/// The MQTT client's rules without a broker: the reconnect schedule and what the log says of
/// it, the outbox, and which refused PUBACKs are reported. (Tests/BridgeTests/BrokerConnectionTests.swift
/// checks the same against a real mosquitto.)
@Suite("MQTT client rules")
struct MQTTClientRulesTests {
    @Test("the default reconnect schedule is 0.2 s doubling up to 2 s, and the log announces what the loop waits")
    func reconnectSchedule() {
        let c = MQTTConfiguration(clientID: "x")
        var b = ReconnectBackoff(initial: c.reconnectDelayMin, maximum: c.reconnectDelayMax)
        #expect(b.plan == "in 0.2 s, the wait doubling up to 2 s")
        var waits: [Duration] = []
        for _ in 0..<7 {
            waits.append(b.take())
        }
        #expect(
            waits == [
                .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .seconds(2), .seconds(2),
                .seconds(2),
            ])
        #expect(b.plan == "every 2 s")
        b.reset()
        #expect(b.plan == "in 0.2 s, the wait doubling up to 2 s")
        #expect(b.take() == .milliseconds(200))
        #expect(b.plan == "in 0.4 s, the wait doubling up to 2 s")
    }

    @Test("the worst wait after the broker is back is the cap: at most 2 s, whatever the outage")
    func worstCase() {
        let c = MQTTConfiguration(clientID: "x")
        for outage in stride(from: 0.0, through: 120.0, by: 0.25) {
            var b = ReconnectBackoff(initial: c.reconnectDelayMin, maximum: c.reconnectDelayMax)
            var attempt = Duration.zero
            while attempt < .milliseconds(Int64(outage * 1000)) { attempt += b.take() }
            #expect(attempt - .milliseconds(Int64(outage * 1000)) <= .seconds(2), "outage \(outage) s")
        }
    }

    @Test(
        "durations in the log read as seconds, to the millisecond",
        arguments: [
            (Duration.milliseconds(200), "0.2 s"), (.milliseconds(1600), "1.6 s"), (.seconds(2), "2 s"),
            (.milliseconds(50), "0.05 s"),
            (.milliseconds(1001), "1.001 s"), (.seconds(30), "30 s"),
        ])
    func seconds(_ d: Duration, _ text: String) {
        #expect(ReconnectBackoff.seconds(d) == text)
    }

    func message(_ topic: String, retain: Bool = false, droppable: Bool = true) -> MQTTOutgoingMessage {
        MQTTOutgoingMessage(topic: topic, payload: Array(topic.utf8), retain: retain, droppable: droppable)
    }

    @Test(
        "the outbox keeps order, lets a newer retained message replace a waiting one, and drops the oldest event beyond its limit"
    )
    func outbox() {
        var o = Outbox(limit: 3)
        var drops: [Bool] = []
        for m in [
            message("e1"), message("s", retain: true, droppable: false), message("e2"),
            message("s", retain: true, droppable: false),
        ] {
            drops.append(o.append(m))
        }
        #expect(drops == [false, false, false, false], "the second status replaces the waiting one")
        #expect(o.count == 3)
        let dropped = o.append(message("r", droppable: false))
        #expect(dropped, "beyond the limit: the oldest event goes")
        let all = o.takeAll()
        #expect(all.map(\.topic) == ["e2", "s", "r"])
        #expect(o.count == 0)
        o.putBack(all[1...])
        let droppedAgain = o.append(message("e3"))
        #expect(!droppedAgain)
        let next = o.takeAll()
        #expect(next.map(\.topic) == ["s", "r", "e3"], "what was put back goes first")
    }

    @Test("statuses and replies are never dropped, even beyond the limit")
    func outboxKeepsWhatMustArrive() {
        var o = Outbox(limit: 1)
        var drops: [Bool] = []
        for i in 0..<5 { drops.append(o.append(message("r\(i)", droppable: false))) }
        #expect(!drops.contains(true))
        #expect(o.count == 5)
    }

    @Test("a refused PUBACK is reported once per topic, with its reason code; accepted ones and unknown ids never")
    func refusals() {
        var a = PublishAcknowledgements()
        a.sent(mid: 1, topic: "t/reply")
        a.sent(mid: 2, topic: "t/status")
        a.sent(mid: 3, topic: "t/reply")
        let accepted = a.acknowledged(mid: 2, reasonCode: 0)
        let again = a.acknowledged(mid: 2, reasonCode: 0x87)
        let first = a.acknowledged(mid: 1, reasonCode: 0x87)
        let sameTopic = a.acknowledged(mid: 3, reasonCode: 0x87)
        #expect(accepted == nil)
        #expect(again == nil, "already acknowledged")
        #expect(first == .first(topic: "t/reply", reasonCode: 0x87))
        #expect(sameTopic == nil, "the same topic again")
        a.sent(mid: 4, topic: "t/event")
        let noSubscribers = a.acknowledged(mid: 4, reasonCode: 0x10)
        #expect(noSubscribers == nil, "0x10 (no matching subscribers) is a success")
        a.sent(mid: 5, topic: "t/event")
        let quota = a.acknowledged(mid: 5, reasonCode: 0x97)
        #expect(quota == .first(topic: "t/event", reasonCode: 0x97))
        let unknown = a.acknowledged(mid: 99, reasonCode: 0x87)
        #expect(unknown == nil)
    }

    @Test("past the limit of remembered topics, one more line says so, then refusals on new topics are not logged")
    func refusalsBounded() {
        var a = PublishAcknowledgements()
        var reported = 0
        for i in 0..<PublishAcknowledgements.reportedLimit {
            a.sent(mid: Int32(i + 1), topic: "reply/\(i)")
            if a.acknowledged(mid: Int32(i + 1), reasonCode: 0x87) != nil { reported += 1 }
        }
        #expect(reported == PublishAcknowledgements.reportedLimit)
        a.sent(mid: 60_000, topic: "reply/more")
        let more = a.acknowledged(mid: 60_000, reasonCode: 0x87)
        #expect(more == .tooManyTopics(topic: "reply/more", reasonCode: 0x87))
        a.sent(mid: 60_001, topic: "reply/even-more")
        let evenMore = a.acknowledged(mid: 60_001, reasonCode: 0x87)
        #expect(evenMore == nil)
    }

    @Test("the refusal's words: the reason, its code, and the ACL to check only for not authorized")
    func refusalWords() {
        #expect(MosquittoLoop.reason(0x87) == "Not authorized (reason code 0x87)")
        #expect(MosquittoLoop.refusalHint(0x87, user: "bridge").contains("check the broker's ACL for user 'bridge'"))
        #expect(!MosquittoLoop.refusalHint(0x97, user: "bridge").contains("ACL"))
    }
}
