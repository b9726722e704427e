import FileStore
import Foundation
import Glibc
import HA
import SwiftNFSTesting
import Testing

/// `swiftnfsd ha ...` as an operator runs it, with nodes as `swiftnfsd ha campaign` processes
/// (lease of 2 s) that are killed, stopped and resumed, against a real etcd.
@Suite(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
struct HACommandTests {
    static let ttl = 2
    /// How long after the active's end a standby may take to be active: the TTL, etcd's expiry
    /// check (every 500 ms), a read of the keys, a campaign, and a busy machine.
    static let takeover = Duration.seconds(ttl + 3)

    static func ha(_ arguments: [String]) async throws -> ToolResult {
        try await Tools.run(try Binaries.swiftnfsd().path, ["ha"] + arguments, timeout: .seconds(30))
    }

    static func status(_ etcd: String) async throws -> ClusterStatus {
        let result = try await ha(["status", "--ha-etcd", etcd])
        guard result.succeeded else { throw ToolFailure(message: "ha status failed", result: result) }
        return try JSONDecoder().decode(ClusterStatus.self, from: result.stdoutData)
    }

    static func nanoseconds(_ d: Duration) -> Int64 { RoleEvent.nanoseconds(d) }

    /// Node "a" active, then node "b" its standby.
    static func twoNodes(_ etcd: EtcdProcess) async throws -> (HANodeProcess, HANodeProcess, RoleEvent) {
        let a = try HANodeProcess(name: "a", etcd: etcd.url, ttl: ttl)
        let active = try await a.waitFor("active", timeout: .seconds(10)) { $0.event == "active" }
        let b = try HANodeProcess(name: "b", etcd: etcd.url, ttl: ttl)
        try await b.waitFor("standby under a", timeout: .seconds(10)) { $0.event == "standby" && $0.leader == "a" }
        return (a, b, active)
    }

    @Test func aKilledActiveIsReplacedWithinTheTTLAndShownDown() async throws {
        try await EtcdProcess.with { etcd in
            let (a, b, first) = try await Self.twoNodes(etcd)
            let killed = SystemClock().now
            try await a.kill()
            let next = try await b.waitFor("active", timeout: Self.takeover) { $0.event == "active" }
            #expect(next.monotonicNs - Self.nanoseconds(killed) < Self.nanoseconds(Self.takeover))
            #expect(try #require(next.epoch) > first.epoch!)
            let status = try await Self.status(etcd.url)
            #expect(status.active == "b" && status.epoch == next.epoch)
            #expect(status.members.map { "\($0.name):\($0.role)" } == ["a:down", "b:active"])
            try await b.stop()
        }
    }

    @Test func aStoppedActiveIsReplacedAndFencesBeforeAnythingElseWhenResumed() async throws {
        try await EtcdProcess.with { etcd in
            let (a, b, first) = try await Self.twoNodes(etcd)
            a.signal(SIGSTOP)
            let stopped = SystemClock().now
            let next = try await b.waitFor("active", timeout: Self.takeover) { $0.event == "active" }
            #expect(next.monotonicNs - Self.nanoseconds(stopped) < Self.nanoseconds(Self.takeover))
            // Stopped for longer than the TTL in any case, so that "a" knows it was.
            try await Task.sleep(until: ContinuousClock.now + .seconds(Self.ttl) - (SystemClock().now - stopped) + .milliseconds(300))
            let before = a.events.count
            a.signal(SIGCONT)
            let fenced = try await a.waitFor("fenced", timeout: .seconds(5)) { $0.event == "fenced" }
            let resumed = a.events.dropFirst(before)
            #expect(resumed.first?.event == "fenced", "after SIGCONT: \(Array(resumed))")
            #expect(fenced.epoch == first.epoch)
            // Never two actives: "a" had stopped considering itself active before "b" became active.
            let activeUntil = try #require(fenced.activeUntilNs)
            #expect(activeUntil < next.monotonicNs, "a active until \(activeUntil), b active from \(next.monotonicNs)")
            // Stopped past its TTL: its lease unproven (the gap seen depends on when it last ran).
            #expect(fenced.reason.map { $0.contains("did not run") || $0.contains("no lease renewal proven") } == true, "\(fenced.reason ?? "")")
            try await a.waitFor("standby under b", timeout: .seconds(5)) { $0.event == "standby" && $0.leader == "b" }
            #expect(a.events.filter { $0.event == "active" }.count == 1)
            #expect(try await Self.status(etcd.url).active == "b")
            try await a.stop()
            try await b.stop()
        }
    }

    @Test func aSwitchoverMovesTheActiveRoleToTheNamedNode() async throws {
        try await EtcdProcess.with { etcd in
            let (a, b, first) = try await Self.twoNodes(etcd)
            let start = ContinuousClock.now
            let result = try await Self.ha(["switchover", "--ha-etcd", etcd.url, "--to", "b"])
            #expect(result.succeeded, "\(result)")
            #expect(ContinuousClock.now - start < .seconds(3))
            let status = try JSONDecoder().decode(ClusterStatus.self, from: result.stdoutData)
            #expect(status.active == "b" && status.epoch > first.epoch!)
            let resigned = try await a.waitFor("resigned", timeout: .seconds(1)) { $0.event == "resigned" }
            #expect(resigned.reason == "switchover to b")
            let next = try await b.waitFor("active", timeout: .seconds(1)) { $0.event == "active" }
            #expect(resigned.monotonicNs < next.monotonicNs)
            try await a.waitFor("standby under b", timeout: .seconds(5)) { $0.event == "standby" && $0.leader == "b" }

            let again = try await Self.ha(["switchover", "--ha-etcd", etcd.url, "--to", "b"])
            #expect(again.succeeded, "\(again)")
            let unknown = try await Self.ha(["switchover", "--ha-etcd", etcd.url, "--to", "nosuch"])
            #expect(!unknown.succeeded && unknown.stderr.contains("no live node named nosuch"), "\(unknown)")
            try await a.stop()
            try await b.stop()
        }
    }

    @Test func statusPrintsTheDocumentedShapeThroughADeadFirstEndpoint() async throws {
        try await EtcdProcess.with { etcd in
            let empty = try await Self.ha(["status", "--ha-etcd", etcd.url])
            #expect(empty.stdout == "{\"active\":null,\"epoch\":0,\"members\":[],\"sync\":null}\n", "\(empty)")
            let (a, b, first) = try await Self.twoNodes(etcd)
            let endpoints = "http://127.0.0.1:\(try Ports.freeTCPAndUDP()),\(etcd.url)"
            let result = try await Self.ha(["status", "--ha-etcd", endpoints, "--ha-cluster", "default"])
            #expect(result.succeeded, "\(result)")
            let json = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any])
            #expect(Set(json.keys) == ["active", "epoch", "sync", "members"])
            #expect(json["sync"] is NSNull, "nodes that only campaign keep no sync record")
            #expect(json["active"] as? String == "a")
            #expect((json["epoch"] as? NSNumber)?.int64Value == first.epoch)
            let members = try #require(json["members"] as? [[String: Any]])
            #expect(members.map { Set($0.keys) } == Array(repeating: ["name", "role", "in_sync", "lag_bytes"], count: 2))
            #expect(members.map { $0["name"] as? String } == ["a", "b"])
            #expect(members.map { $0["role"] as? String } == ["active", "standby"])
            #expect(members.map { $0["in_sync"] as? Bool } == [true, false])
            #expect(members.map { ($0["lag_bytes"] as? NSNumber)?.int64Value } == [0, 0])
            // Another cluster's keys are apart.
            #expect(try await Self.ha(["status", "--ha-etcd", etcd.url, "--ha-cluster", "other"]).stdout
                    == "{\"active\":null,\"epoch\":0,\"members\":[],\"sync\":null}\n")
            // A standby that stops leaves its lease: it is down at once.
            try await b.stop()
            #expect(try await Self.status(etcd.url).members.map(\.role) == ["active", "down"])
            try await a.stop()
            let none = try await Self.status(etcd.url)
            #expect(none.active == nil && none.epoch == 0 && none.members.map(\.role) == ["down", "down"])
        }
    }

    @Test func anUnreachableEtcdIsAClearErrorAndExitStatusNotAHang() async throws {
        let dead = try (0..<2).map { _ in "http://127.0.0.1:\(try Ports.freeTCPAndUDP())" }.joined(separator: ",")
        for command in [["status"], ["switchover", "--to", "b"], ["campaign", "--ha-name", "a"]] {
            let start = ContinuousClock.now
            // Refused at once; a hang would last the 30 s timeout.
            let result = try await Self.ha(command + ["--ha-etcd", dead, "--timeout", "30"])
            #expect(result.status == 3, "\(result)")
            #expect(result.stderr.contains("etcd is unreachable") && result.stderr.contains("refused"), "\(result)")
            #expect(ContinuousClock.now - start < .seconds(20))
        }
        let malformed = try await Self.ha(["status", "--ha-etcd", "127.0.0.1:2379"])
        #expect(malformed.status == 64 && malformed.stderr.contains("--ha-etcd"), "\(malformed)")
    }

    /// A node the sync record does not name (the last active "x" acknowledged writes alone)
    /// stays a standby, and says why in the status, until an operator allows it to take over.
    @Test func aNodeTheSyncRecordDoesNotNameWaitsUntilAllowedToTakeOver() async throws {
        try await EtcdProcess.with { etcd in
            let client = try EtcdClient(endpoints: [etcd.url])
            let keys = ClusterKeys(cluster: "default")
            try await client.put(keys.sync, SyncRecord(leader: "x", standby: nil).jsonData())
            let b = try HANodeProcess(name: "b", etcd: etcd.url, ttl: Self.ttl)
            try await b.waitFor("standby", timeout: .seconds(10)) { $0.event == "standby" }
            try await Task.sleep(for: .seconds(1))
            #expect(!b.events.contains { $0.event == "active" })
            // Logged once, with the reason, not at every step.
            #expect(b.log.components(separatedBy: "ha.campaign refused: not eligible").count == 2, "\(b.log)")
            #expect(b.log.contains("names x (last active) and no sync standby"), "\(b.log)")
            let status = try await Self.status(etcd.url)
            #expect(status.active == nil && status.sync == SyncRecord(leader: "x", standby: nil))
            #expect(status.members.first { $0.name == "b" }?.notEligible?.contains("names x (last active) and no sync standby") == true)

            let allowed = try await Self.ha(["allow-takeover", "--ha-etcd", etcd.url, "--to", "b"])
            #expect(allowed.succeeded, "\(allowed)")
            try await b.waitFor("active", timeout: .seconds(5)) { $0.event == "active" }
            #expect(try await Self.status(etcd.url).members.first { $0.name == "b" }?.notEligible == nil)
            // With a node active, there is nothing to allow.
            let refused = try await Self.ha(["allow-takeover", "--ha-etcd", etcd.url, "--to", "c"])
            #expect(!refused.succeeded && refused.stderr.contains("b is active"), "\(refused)")
            // A switchover only to a node that may take over: c, which the record does not name, is refused.
            let c = try HANodeProcess(name: "c", etcd: etcd.url, ttl: Self.ttl)
            try await c.waitFor("standby under b", timeout: .seconds(10)) { $0.event == "standby" && $0.leader == "b" }
            let switched = try await Self.ha(["switchover", "--ha-etcd", etcd.url, "--to", "c"])
            #expect(!switched.succeeded && switched.stderr.contains("c cannot take over"), "\(switched)")
            #expect(try await Self.status(etcd.url).active == "b")
            try await c.stop()
            try await b.stop()
        }
    }
}
