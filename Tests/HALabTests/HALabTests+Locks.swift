import Foundation
import NFS3
import NFS3Client
import NIOCore
import NLM
import SwiftNFSTesting
import Testing

/// Locks across a takeover (NFSv3 style: the new active does not inherit the lock table; it
/// learns who held locks, tells them it restarted, and for a grace period grants only their
/// reclaims). The clients on record reach the next active through etcd.
extension HALabTests {
    /// A lock client of the service address, as host `name` with one process.
    struct LabLocker {
        let name: String
        let nlm: NLMClient

        static func connect(_ name: String) async throws -> LabLocker {
            LabLocker(name: name, nlm: try await NLMClient.connect(to: try SocketAddress(ipAddress: HALab.serviceIP, port: 2049)))
        }

        func lock(_ file: NFS3FileHandle) -> NLMLock {
            NLMLock(callerName: name, fileHandle: file.bytes, ownerHandle: Array("1@\(name)".utf8), svid: 1, offset: 0, length: 0)
        }
    }

    /// A client holds a lock on the active, which is killed: the new active holds its grace
    /// period for that client (another host's lock is refused with DENIED_GRACE_PERIOD), grants
    /// the holder's reclaim, and after the grace period the reclaimed lock still conflicts.
    @Test func aLockHeldOnTheOldActiveIsReclaimedOnTheNew() async throws {
        try await lab(lockGrace: 30) { lab in
            let (active, standby) = try await Self.settled(lab)
            try await Self.waitInSync(lab, active: active, standby: standby)
            let client = try await lab.nfsClient()
            let root = try await client.mount(lab.exportPath)
            let file = try #require(try await client.create(root, Self.name("locked")).object)
            await client.close()
            let holder = try await LabLocker.connect("host-a")
            #expect(try await holder.nlm.lock(holder.lock(file), exclusive: true) == .granted)
            await holder.nlm.close()

            try await lab.nodes[active]!.kill9()
            try await lab.waitForHolder(standby, timeout: .seconds(30))
            let probe = try await lab.probe(untilOk: 30)
            try #require(probe.ok, "\(probe.tool)")

            let other = try await LabLocker.connect("host-b")
            defer { Task { await other.nlm.close() } }
            #expect(try await other.nlm.lock(other.lock(file), exclusive: true) == .deniedGracePeriod,
                    "the new active granted another host the lock that host-a held: it did not know host-a held locks")
            let again = try await LabLocker.connect("host-a")
            defer { Task { await again.nlm.close() } }
            #expect(try await again.nlm.lock(again.lock(file), exclusive: true, reclaim: true) == .granted)
            #expect(try await other.nlm.test(other.lock(file), exclusive: true).0 != .granted)
            let log = lab.nodes[standby]!.log
            #expect(log.contains("nlm.clients=1"), "the grace period's log line names one client: \(log)")
        }
    }
}
