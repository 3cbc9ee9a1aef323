import IdlewatcherCore
import Testing

@testable import ProxmoxProvider

/// The rules without I/O: UPIDs, task history, the poller's state machine.
@Suite struct ProxmoxRulesTests {
    @Test func upidsParseWithEightOrNineHexDigitsOfPstart() throws {
        let u = try #require(UPID("UPID:pve1:0000377E:19E15146:5F3C0469:vzshutdown:100:root@pam!bridge:"))
        #expect(u.node == "pve1" && u.type == "vzshutdown" && u.id == "100" && u.user == "root@pam!bridge")
        #expect(u.pid == 0x377E && u.pstart == 0x19E1_5146 && u.starttime == 0x5F3C_0469)
        let nine = try #require(UPID("UPID:pve-2:00003F21:1A2B3C4D5:6650A1B2:vzstart:105:root@pam:"))
        #expect(nine.pstart == 0x1_A2B3_C4D5 && nine.node == "pve-2")
        #expect(UPID("UPID:pve1:0000377E:19E15146:5F3C0469:vzshutdown:100:root@pam") == nil)  // no trailing colon
        #expect(UPID("UPID:pve1:377E:19E15146:5F3C0469:vzstart:100:root@pam:") == nil)
        #expect(UPID("UPID:pve1:0000377E:19E15146:5F3C0469::100:root@pam:") == nil)
        #expect(UPID("not a upid") == nil)
    }

    @Test func okAndWarningsAreSuccess() {
        #expect(ProxmoxTasks.succeeded("OK"))
        #expect(ProxmoxTasks.succeeded("WARNINGS: 2"))
        #expect(!ProxmoxTasks.succeeded("CT is locked (backup)"))
        #expect(!ProxmoxTasks.succeeded(""))
    }

    @Test func aCTIsSuspendedWhenItsLatestLifecycleTaskIsASuccessfulSuspend() {
        func t(
            _ type: String, _ vmid: String = "101", start: Int64, pstart: Int64 = 0, end: Int64?, _ exit: String? = "OK"
        )
            -> TaskRecord
        {
            TaskRecord(type: type, id: vmid, starttime: start, pstart: pstart, endtime: end, exitstatus: end == nil ? nil : exit)
        }
        // Start and suspend ended in the same second: the worker's pstart tells them apart.
        let sameSecond = [
            t("vzstart", start: 100, pstart: 5000, end: 100),
            t("vzsuspend", start: 100, pstart: 5020, end: 100),
            t("vzdump", start: 101, end: 120),
            t("vzstart", "102", start: 130, end: 130),
        ]
        #expect(ProxmoxTasks.suspended(101, in: sameSecond) == true)
        #expect(ProxmoxTasks.suspended(101, in: sameSecond + [t("vzresume", start: 140, end: 141)]) == false)
        // A failed suspend is the latest: not suspended (the CT kept running).
        #expect(ProxmoxTasks.suspended(101, in: [t("vzsuspend", start: 150, end: 151, "lxc-checkpoint failed")]) == false)
        // A running task does not count yet.
        #expect(ProxmoxTasks.suspended(101, in: sameSecond + [t("vzresume", start: 160, end: nil)]) == true)
        #expect(ProxmoxTasks.suspended(103, in: sameSecond) == nil)
    }

    @Test func statusChangesNameTheirEvents() {
        #expect(ProxmoxPoller.action(from: .stopped, to: .running) == "start")
        #expect(ProxmoxPoller.action(from: .paused, to: .running) == "unpause")
        #expect(ProxmoxPoller.action(from: .running, to: .paused) == "pause")
        #expect(ProxmoxPoller.action(from: .running, to: .stopped) == "stop")
        #expect(ProxmoxPoller.action(from: .running, to: .running) == nil)
        #expect(ProxmoxPoller.action(from: .error, to: .running) == nil)
    }

    @Test func onlyChangedCTsAreConfirmed() {
        let a = ClusterGuest(vmid: 100, node: "pve1", name: "a", status: "running")
        let b = ClusterGuest(vmid: 101, node: "pve1", name: "b", status: "running")
        let c = ClusterGuest(vmid: 102, node: "pve2", name: "c", status: "stopped")
        var poller = ProxmoxPoller()
        #expect(poller.needsResync([a, b, c]))
        poller.adopt([a, b, c], statuses: [100: .running, 101: .running, 102: .paused], hintsSeen: 0)
        #expect(!poller.needsResync([a, b, c]))
        #expect(poller.changes([a, b, c], hints: [:]).isEmpty)

        var b2 = b
        b2.status = "stopped"
        var c2 = c
        c2.node = "pve1"
        let d = ClusterGuest(vmid: 103, node: "pve1", name: "d", status: "running")
        let changes = poller.changes([b2, c2, d], hints: [:])
        #expect(
            changes == [
                .destroyed(vmid: 100, poller.known[100]!), .confirm(b2, previous: poller.known[101]!),
                .moved(c2, previous: poller.known[102]!), .created(d),
            ])

        // The bridge's own suspend of 101, already visible in the listing: an event, no request.
        #expect(
            poller.changes([a, b2, c], hints: [101: [.paused]])
                == [.operated(b2, previous: poller.known[101]!, statuses: [.paused], confirm: false)])
        // Pause and wake between two reads: two events; the listing still agrees.
        #expect(
            poller.changes([a, b, c], hints: [101: [.paused, .running]])
                == [.operated(b, previous: poller.known[101]!, statuses: [.paused, .running], confirm: false)])
        // Its own kill of 100 before the listing shows it: an event, then a confirmation.
        #expect(
            poller.changes([a, b, c], hints: [100: [.stopped]])
                == [.operated(a, previous: poller.known[100]!, statuses: [.stopped], confirm: true)])
        // A hint that changes nothing is nothing.
        #expect(poller.changes([a, b, c], hints: [100: [.running]]).isEmpty)
        // The listing catching up later costs no request either.
        var a2 = a
        a2.status = "stopped"
        poller.record(a, status: .stopped)
        #expect(poller.changes([a2, b, c], hints: [:]) == [.moved(a2, previous: poller.known[100]!)])
    }

    @Test("a change pvestatd never saw: stopped by a task, started inside before its next report")
    func aStaleListingIsConfirmedOnItsNextReport() {
        var vm = ClusterGuest(vmid: 200, type: "qemu", node: "pve1", name: "vm", status: "running")
        vm.uptime = 500
        var poller = ProxmoxPoller()
        let t0 = ContinuousClock.now
        poller.adopt([vm], statuses: [200: .running], hintsSeen: 0)
        // A qmshutdown task ended: confirmed stopped while the listing still says running.
        #expect(poller.changes([vm], hints: [:], tasked: [200], now: t0) == [.confirm(vm, previous: poller.known[200]!)])
        poller.record(vm, status: .stopped, now: t0)
        // The same stale report: nothing to ask.
        #expect(poller.changes([vm], hints: [:], now: t0 + .seconds(3)).isEmpty)
        // pvestatd reports again, running with a new uptime (started from inside meanwhile): confirm.
        var fresh = vm
        fresh.uptime = 2
        #expect(poller.changes([fresh], hints: [:], now: t0 + .seconds(4)) == [.confirm(fresh, previous: poller.known[200]!)])
        // Without a new report, the window's end brings a confirmation too, once.
        #expect(
            poller.changes([vm], hints: [:], now: t0 + ProxmoxPoller.staleWindow)
                == [.confirm(vm, previous: poller.known[200]!)])
        // A VM paused is `paused` in the listing; paused then stopped is a change.
        var paused = vm
        paused.status = "paused"
        poller.record(paused, status: .paused, now: t0)
        #expect(poller.known[200]?.staleUntil == nil)
        var stopped = vm
        stopped.status = "stopped"
        #expect(poller.changes([stopped], hints: [:], now: t0) == [.confirm(stopped, previous: poller.known[200]!)])
    }

    @Test func aNodeGoingOfflineOrComingBackIsAResync() {
        let a = ClusterGuest(vmid: 100, node: "pve1", name: "a", status: "running")
        var b = ClusterGuest(vmid: 101, node: "pve2", name: "b", status: "running")
        var poller = ProxmoxPoller()
        poller.adopt([a, b], statuses: [100: .running, 101: .running], hintsSeen: 0)
        b.status = "unknown"
        #expect(poller.needsResync([a, b]))
        poller.adopt([a, b], statuses: [100: .running, 101: .error], hintsSeen: 0)
        #expect(poller.offlineNodes == ["pve2"])
        #expect(!poller.needsResync([a, b]))
        b.status = "running"
        #expect(poller.needsResync([a, b]))
        poller.lost()
        #expect(poller.needsResync([a]))
    }

    @Test func urlsAreNormalizedAndChecked() throws {
        func base(_ url: String) -> String? {
            try? ProxmoxEndpointConfiguration(url: url, credentials: .token(id: "a@pam!b", secret: "s")).httpConfiguration().get()
                .baseURL
        }
        #expect(base("https://pve1.lan:8006") == "https://pve1.lan:8006")
        #expect(base("https://pve1.lan:8006/api2/json/") == "https://pve1.lan:8006")
        #expect(base("http://127.0.0.1:8006/") == "http://127.0.0.1:8006")
        #expect(base("pve1.lan:8006") == nil)
        #expect(base("https://root:pw@pve1.lan:8006") == nil)
        #expect(base("https://pve1.lan:8006/other") == nil)
    }

    @Test func proxmoxMessagesLoseTheirTrailingNewline() {
        let r = ProxmoxReply(
            status: 500, reason: "CT 100 already running",
            body: Array(#"{"data":null,"message":"CT 100 already running\n"}"#.utf8))
        #expect(r.text == "CT 100 already running")
        let missing = ProxmoxReply(
            status: 500, reason: "x",
            body: Array(#"{"data":null,"message":"Configuration file 'nodes/pve/lxc/999.conf' does not exist\n"}"#.utf8))
        #expect(missing.isMissingConfiguration)
        let empty = ProxmoxReply(status: 401, reason: "No ticket", body: [])
        #expect(empty.text == "No ticket" && empty.data == nil)
    }
}
