import Logging
import NIOCore
import NIOPosix
import ONCRPC
import Testing
import XDR
@testable import RPCTransport

/// Connections are spread over the event loops of the group, so calls on several connections
/// are served by several threads (cores), not one.
@Suite struct EventLoopSpreadTests {
    @Test func callsOnFourConnectionsAreServedByMoreThanOneEventLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let clients = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = CallPool(threads: 2)
        pool.start()
        let core = RPCServerCore(dispatcher: RPCDispatcher(programs: [TestProgram(procedureTraits: .read)]),
                                 cache: DuplicateRequestCache(), threadPool: pool, logger: Logger(label: "test"))
        let listener = try await RPCListener.bind(host: "127.0.0.1", port: 0, core: core, group: group)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: listener.port)
        var connections: [RPCClient] = []
        for _ in 0..<4 { connections.append(try await RPCClient.connect(to: address, transport: .tcp, group: clients)) }
        for c in connections {
            for _ in 0..<10 {
                var results = try await c.call(program: TestProgram.number, version: 1, procedure: 1)
                #expect(try results.readXDRUInt32() == 2)
            }
        }
        let loops = listener.calls.loops
        #expect(loops.count == 2, "calls by loop: \(loops)")
        #expect(loops.allSatisfy { $0.received >= 10 }, "calls by loop: \(loops)")
        // The procedure blocks and has no answer without blocking: every call went to the pool.
        #expect(loops.allSatisfy { $0.handedOff == $0.received }, "calls by loop: \(loops)")
        #expect(loops.reduce(0) { $0 + $1.received } == 40)
        for c in connections { await c.close() }
        await listener.close()
        await pool.shutdownGracefully()
        try await clients.shutdownGracefully()
        try await group.shutdownGracefully()
    }
}
