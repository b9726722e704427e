import Daemon
import Foundation
import HA
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import RPCTransport
import SwiftNFSTesting
import Synchronization
import Testing

/// The duplicate request cache survives a takeover, through the real wire: an active "a" and a
/// standby "b" in this process against a real etcd, b following a's journal. A client sends
/// REMOVE, CREATE EXCLUSIVE and RENAME to a from one address and port with xids of its own; a
/// stops (it resigns) and b takes over; the same calls with the same xids from the same address
/// and port to b get a's replies byte for byte (NFS3_OK, the same weak cache consistency data
/// and handle), while the same calls under new xids are executed (NFS3ERR_NOENT, NFS3ERR_EXIST).
///
/// The nodes export two directories with one `fsid=`, as two machines export one path: a's
/// handles resolve on b. The client retransmits over UDP from a port it binds (the Linux
/// client reconnects over TCP from the same port; the cache keys both alike).
@Suite struct TakeoverReplayTests {
    @Test(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
    func aRetransmissionAfterATakeoverGetsTheOriginalReply() async throws {
        try await withCluster("replay") { _, etcdClient, keys in
            var a = TestServerOptions.clusterNode("a", etcd: etcdClient, keys: keys)
            a.replicationPort = 0
            a.exportOptions.fsid = UInt64.random(in: 1_000...1_000_000)
            var b = TestServerOptions.clusterNode("b", etcd: etcdClient, keys: keys)
            b.exportOptions.fsid = a.exportOptions.fsid
            let standbyOptions = b
            let clientPort = try Ports.freeTCPAndUDP()
            let xids = (remove: UInt32.random(in: 1...1 << 30), create: UInt32.random(in: 1...1 << 30), rename: UInt32.random(in: 1...1 << 30))
            // What a answered, for b's body (which runs once b has taken over).
            let (answers, answered) = AsyncStream.makeStream(of: (root: NFS3FileHandle, remove: [UInt8], create: [UInt8], rename: [UInt8]).self)

            let standby = try await withTestServer(a) { serverA, clientA, rootA in
                var following = standbyOptions
                following.replicationFrom = ("127.0.0.1", try #require(serverA.replicationPort))
                // b: mounts (and so runs its body) once it is the active.
                let standby = Task { [following] in
                    try await withTestServer(following) { serverB, _, rootB in
                        var iterator = answers.makeAsyncIterator()
                        let original = try #require(await iterator.next())
                        #expect(rootB == original.root, "a's handles resolve on b")
                        let calls = Retransmission.Calls(root: original.root)
                        try await Retransmission.withClient(of: serverB.nfsPort, from: clientPort) { (rpc: RPCClient) async throws -> Void in
                            // Retransmissions: the original replies, byte for byte.
                            #expect(try await Retransmission.call(rpc, .remove, xid: xids.remove, calls.remove) == original.remove)
                            #expect(try await Retransmission.call(rpc, .create, xid: xids.create, calls.create) == original.create)
                            #expect(try await Retransmission.call(rpc, .rename, xid: xids.rename, calls.rename) == original.rename)
                            // New calls: executed.
                            #expect(try Retransmission.status(try await Retransmission.call(rpc, .remove, xid: xids.remove &+ 1, calls.remove)) == .noent)
                            #expect(try Retransmission.status(try await Retransmission.call(rpc, .create, xid: xids.create &+ 1, calls.createAgain)) == .exist)
                            #expect(try Retransmission.status(try await Retransmission.call(rpc, .rename, xid: xids.rename &+ 1, calls.rename)) == .noent)
                        }
                        // The same xid from another port of the client is another client's call.
                        try await Retransmission.withClient(of: serverB.nfsPort, from: try Ports.freeTCPAndUDP()) { (rpc: RPCClient) async throws -> Void in
                            #expect(try Retransmission.status(try await Retransmission.call(rpc, .remove, xid: xids.remove, calls.remove)) == .noent)
                        }
                    }
                }
                try await ServingNodeTests.eventually("b in sync with a", .seconds(20)) { await serverA.haStatus().contains("standby b: in sync") }
                // Only the standby the sync record names may take over.
                try await ServingNodeTests.eventually("a names b its sync standby", .seconds(5)) {
                    await serverA.haStatus().contains("sync record: a, sync standby b")
                }

                _ = try await clientA.create(rootA, Array("gone".utf8))
                _ = try await clientA.create(rootA, Array("old".utf8))
                let calls = Retransmission.Calls(root: rootA)
                let (remove, create, rename) = try await Retransmission.withClient(of: serverA.nfsPort, from: clientPort) { rpc in
                    let remove = try await Retransmission.call(rpc, .remove, xid: xids.remove, calls.remove)
                    let create = try await Retransmission.call(rpc, .create, xid: xids.create, calls.create)
                    let rename = try await Retransmission.call(rpc, .rename, xid: xids.rename, calls.rename)
                    // a's own cache answers a retransmission as well.
                    #expect(try await Retransmission.call(rpc, .remove, xid: xids.remove, calls.remove) == remove)
                    return (remove, create, rename)
                }
                for reply in [remove, create, rename] { #expect(try Retransmission.status(reply) == .ok) }
                answered.yield((rootA, remove, create, rename))
                answered.finish()
                return standby
            }
            // a has stopped (it resigned): b takes over and retransmits (above).
            try await standby.value
        }
    }
}
