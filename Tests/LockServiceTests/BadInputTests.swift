import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import NLM
import ONCRPC
import RPCTransport
import SwiftNFSTesting
import Testing
import XDR

/// What a network can send the lock manager: each gets a clear RPC or NLM error, and the server
/// goes on granting locks to everyone else.
@Suite struct LockBadInputTests {
    func rpc(_ server: TestServer) async throws -> RPCClient {
        try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort), transport: .tcp,
                                    group: MultiThreadedEventLoopGroup.singleton)
    }

    func rejected(_ client: RPCClient, program: UInt32 = NLM.program, version: UInt32 = 4, procedure: UInt32,
                  _ arguments: ByteBuffer) async throws -> RPCReplyStatus? {
        do {
            _ = try await client.call(program: program, version: version, procedure: procedure, arguments: arguments)
            return nil
        } catch let error as RPCClientError {
            guard case .rejected(let status) = error.reason else { throw error }
            return status
        }
    }

    @Test("truncated arguments, oversized objects, bad share modes, unknown procedures and versions are refused as such")
    func malformedCalls() async throws {
        try await withTestServer { server, client, root in
            let file = try await makeFile(client, root)
            let a = try await LockingHost.connect("host-a", to: server)
            let rpc = try await rpc(server)
            var whole = ByteBuffer()
            whole.writeNLMLockArguments(NLMLockArguments(cookie: [1], exclusive: true, lock: a.lock(file)), .lock, version: 4)
            let truncated = whole.getSlice(at: 0, length: whole.readableBytes - 6)!
            #expect(try await rejected(rpc, procedure: NLM.Procedure.lock.rawValue, truncated) == .garbageArgs)
            var huge = ByteBuffer()
            huge.writeXDRVariableOpaque(bytes: [1])
            huge.writeXDRBool(false)
            huge.writeXDRString("host-a")
            huge.writeXDRVariableOpaque(bytes: Array(repeating: 0, count: 2000))  // a handle past MAXNETOBJ_SZ
            #expect(try await rejected(rpc, procedure: NLM.Procedure.test.rawValue, huge) == .garbageArgs)
            var share = ByteBuffer()
            share.writeNLMShareArguments(NLMShareArguments(cookie: [1], callerName: "host-a", fileHandle: file.bytes,
                                                           ownerHandle: [1], denyMode: 9, access: 1))
            #expect(try await rejected(rpc, procedure: NLM.Procedure.share.rawValue, share) == .garbageArgs)
            #expect(try await rejected(rpc, procedure: 17, ByteBuffer()) == .procUnavail)
            #expect(try await rejected(rpc, procedure: 40, ByteBuffer()) == .procUnavail)
            #expect(try await rejected(rpc, version: 1, procedure: NLM.Procedure.share.rawValue, share) == .procUnavail)
            #expect(try await rejected(rpc, version: 2, procedure: 0, ByteBuffer()) == .progMismatch(low: 1, high: 4))
            #expect(try await rejected(rpc, program: NSM.program, procedure: 0, ByteBuffer()) == .progMismatch(low: 1, high: 1))
            // And the lock manager still serves.
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            await rpc.close()
        }
    }

    @Test("ranges that would pass the largest offset reach the end of the file and still conflict")
    func overflowingRanges() async throws {
        try await withTestServer { server, client, root in
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file, .max - 5, 100), exclusive: true) == .granted)
            #expect(try await b.nlm.test(b.lock(file, .max - 1, 1), exclusive: false).0 == .denied)
            #expect(try await b.nlm.lock(b.lock(file, 0, .max - 5), exclusive: true) == .granted)
            #expect(try await b.nlm.lock(b.lock(file, 0, 0), exclusive: true) == .denied)
        }
    }

    @Test("a waiter whose client never answers the GRANTED call keeps the lock; asking again, it is granted at once")
    func unreachableWaiter() async throws {
        try await withTestServer { server, client, root in
            // No lock manager of the client is registered anywhere: the callback finds none.
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            #expect(try await b.nlm.lock(b.lock(file), exclusive: true, block: true) == .blocked)
            #expect(try await a.nlm.unlock(a.lock(file)) == .granted)
            // The Linux client asks again by itself (every 30 s); here at once.
            #expect(try await b.nlm.lock(b.lock(file), exclusive: true, block: true) == .granted)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .denied)
        }
    }
}
