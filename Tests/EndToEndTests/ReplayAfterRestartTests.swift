import Foundation
import NFS3
import SwiftNFSTesting
import Testing

/// The duplicate request cache across a restart of a server with a durable directory, through
/// the real wire and the real journal: a client sends REMOVE, CREATE EXCLUSIVE and RENAME under
/// xids of its own; the server stops (gracefully: its last checkpoint empties the journal, the
/// replies stay in `DIR/replies`) and starts again on the same directories; the same calls
/// under the same xids from the same address and port get the first replies byte for byte,
/// and under new xids are executed (NFS3ERR_NOENT, NFS3ERR_EXIST).
@Suite struct ReplayAfterRestartTests {
    @Test func aRetransmissionAfterARestartGetsTheOriginalReply() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-replay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = TestServerOptions()
        options.directory = directory
        options.durable = true
        let clientPort = try Ports.freeTCPAndUDP()
        let xids = (remove: UInt32.random(in: 1...1 << 30), create: UInt32.random(in: 1...1 << 30), rename: UInt32.random(in: 1...1 << 30))

        let (root, remove, create, rename) = try await withTestServer(options) { server, client, root in
            _ = try await client.create(root, Array("gone".utf8))
            _ = try await client.create(root, Array("old".utf8))
            let calls = Retransmission.Calls(root: root)
            return try await Retransmission.withClient(of: server.nfsPort, from: clientPort) { rpc in
                let remove = try await Retransmission.call(rpc, .remove, xid: xids.remove, calls.remove)
                let create = try await Retransmission.call(rpc, .create, xid: xids.create, calls.create)
                let rename = try await Retransmission.call(rpc, .rename, xid: xids.rename, calls.rename)
                for reply in [remove, create, rename] { #expect(try Retransmission.status(reply) == .ok) }
                return (root, remove, create, rename)
            }
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/durable/replies"))

        try await withTestServer(options) { server, _, rootAgain in
            #expect(rootAgain == root)
            let calls = Retransmission.Calls(root: root)
            try await Retransmission.withClient(of: server.nfsPort, from: clientPort) { rpc async throws -> Void in
                #expect(try await Retransmission.call(rpc, .remove, xid: xids.remove, calls.remove) == remove)
                #expect(try await Retransmission.call(rpc, .create, xid: xids.create, calls.create) == create)
                #expect(try await Retransmission.call(rpc, .rename, xid: xids.rename, calls.rename) == rename)
                #expect(try Retransmission.status(try await Retransmission.call(rpc, .remove, xid: xids.remove &+ 1, calls.remove)) == .noent)
                #expect(try Retransmission.status(try await Retransmission.call(rpc, .create, xid: xids.create &+ 1, calls.createAgain)) == .exist)
                #expect(try Retransmission.status(try await Retransmission.call(rpc, .rename, xid: xids.rename &+ 1, calls.rename)) == .noent)
            }
        }
    }
}
