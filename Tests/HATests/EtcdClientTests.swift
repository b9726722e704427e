import FoundationEssentials
import HA
import SwiftNFSTesting
import Testing

/// The gateway calls against a real etcd.
@Suite(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
struct EtcdClientTests {
    @Test func keysRangesAndACreateOnlyIfAbsentTransaction() async throws {
        try await EtcdProcess.with { etcd in
            let client = try EtcdClient(endpoints: [etcd.url])
            #expect(try await client.get("/t/a") == nil)
            let revision = try await client.put("/t/a", Data("1".utf8))
            try await client.put("/t/b", Data("2".utf8))
            try await client.put("/u", Data("3".utf8))
            let a = try #require(try await client.get("/t/a"))
            #expect(a.value == Data("1".utf8) && a.createRevision?.value == revision)
            #expect(try await client.list(prefix: "/t/").map(\.keyString) == ["/t/a", "/t/b"])

            let key = Data("/t/c".utf8)
            let create = TxnRequest(compare: [.created(key, at: 0)], success: [.put(PutRequest(key: key, value: Data("x".utf8)))],
                                    failure: [.range(RangeRequest(key: key))])
            #expect(try await client.txn(create).succeeded == true)
            let again = try await client.txn(create)
            #expect(again.succeeded != true)
            #expect(again.responses?.first?.responseRange?.kvs?.first?.value == Data("x".utf8))
            #expect(try await client.delete("/t/c") == 1)
            #expect(try await client.delete("/t/c") == 0)

            // A mod revision compare: a missing key is at 0; a key changed since it was read is not where it was.
            let sync = Data("/t/sync".utf8)
            let guarded = { (revision: Int64) in TxnRequest(compare: [.modified(sync, at: revision)], success: [.put(PutRequest(key: key, value: Data()))]) }
            #expect(try await client.txn(guarded(0)).succeeded == true)
            let read = try await client.put("/t/sync", Data("1".utf8))
            #expect(try await client.txn(guarded(0)).succeeded != true)
            #expect(try await client.txn(guarded(read)).succeeded == true)
            try await client.put("/t/sync", Data("2".utf8))
            #expect(try await client.txn(guarded(read)).succeeded != true)
        }
    }

    /// The cluster's handle key: the first proposal is kept, every later one gets it back.
    @Test func aValueSetIfAbsentIsTheFirstProposal() async throws {
        try await EtcdProcess.with { etcd in
            let client = try EtcdClient(endpoints: [etcd.url])
            let keys = ClusterKeys(cluster: "t")
            let first = Data((0..<16).map { UInt8($0) }), second = Data((0..<16).map { UInt8(100 + $0) })
            #expect(try await client.value(of: keys.handleKey, settingIfAbsent: first) == first)
            #expect(try await client.value(of: keys.handleKey, settingIfAbsent: second) == first)
            #expect(try await client.get(keys.handleKey)?.value == first)
            #expect(try await client.get(keys.handleKey)?.lease == nil)
        }
    }

    @Test func aLeaseKeepsItsKeysUntilRevoked() async throws {
        try await EtcdProcess.with { etcd in
            let client = try EtcdClient(endpoints: [etcd.url])
            let lease = try await client.grantLease(ttl: .seconds(5))
            #expect(lease.ttl >= .seconds(5))
            try await client.put("/leased", Data(), lease: lease.id)
            #expect(try await client.get("/leased")?.lease?.value == lease.id)
            #expect(try await client.keepAlive(lease: lease.id) >= .seconds(5))
            try await client.revoke(lease: lease.id)
            #expect(try await client.get("/leased") == nil)
            await #expect(throws: EtcdError.self) { try await client.keepAlive(lease: lease.id) }
            try await client.revoke(lease: lease.id)  // gone already: no error
        }
    }

    @Test func aDeadFirstEndpointIsPassedOver() async throws {
        try await EtcdProcess.with { etcd in
            let dead = "http://127.0.0.1:\(try Ports.freeTCPAndUDP())"
            let client = try EtcdClient(endpoints: [dead, etcd.url], timeout: .seconds(4))
            let start = ContinuousClock.now
            try await client.put("/k", Data("v".utf8))
            #expect(try await client.get("/k")?.value == Data("v".utf8))
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test func noEndpointAnsweringIsAClearErrorNotAHang() async throws {
        let dead = try (0..<2).map { _ in "http://127.0.0.1:\(try Ports.freeTCPAndUDP())" }
        // Refused connections fail at once; a hang would last the whole (long) timeout.
        let client = try EtcdClient(endpoints: dead, timeout: .seconds(30))
        let start = ContinuousClock.now
        do {
            _ = try await client.get("/k")
            Issue.record("no error")
        } catch let error as EtcdError {
            #expect(error.code == .unreachable)
            #expect(error.description.contains(dead[0]) && error.description.contains(dead[1]))
            #expect(error.description.contains("refused"), "\(error)")
        }
        #expect(ContinuousClock.now - start < .seconds(20), "not refused at once: waited for the timeout")
        #expect(throws: EtcdError.self) { try EtcdClient(commaSeparated: "127.0.0.1:2379") }
    }
}
