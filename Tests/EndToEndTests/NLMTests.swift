import Foundation
import NIOCore
import NIOPosix
import ONCRPC
import RPCTransport
import SwiftNFSTesting
import Testing
import XDR

/// Without locking, a lock request must fail at once (nlm_denied_nolocks, ENOLCK on Linux),
/// never leave a client retrying against a missing program.
@Suite("NLM without locking")
struct NLMTests {
    @Test("LOCK and TEST are denied with NOLOCKS, UNLOCK is granted, the cookie is echoed", arguments: [UInt32(1), 3, 4])
    func lockRequestsFailPromptly(version: UInt32) async throws {
        try await ServerProcess.with(portmap: .none) { server in
            let client = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
                                                     transport: .tcp, group: MultiThreadedEventLoopGroup.singleton)
            for (procedure, expected) in [(UInt32(2), UInt32(2)), (1, 2), (4, 0)] {
                var args = ByteBuffer()
                args.writeXDRVariableOpaque(bytes: [1, 2, 3, 4, 5])  // cookie
                args.writeXDRBool(false)                              // block / exclusive
                args.writeXDRBool(true)
                var reply = try await client.call(program: 100_021, version: version, procedure: procedure,
                                                   credentials: .sys(AuthSysParameters(uid: 0, gid: 0)), arguments: args)
                #expect(Array(try reply.readXDRVariableOpaque(limit: 1024).readableBytesView) == [1, 2, 3, 4, 5])
                #expect(try reply.readXDRUInt32() == expected, "procedure \(procedure)")
            }
            await client.close()
        }
    }
}
