import NIOCore
import NIOPosix
import NLM
import ONCRPC
import RPCTransport
import XDR

/// A typed client of the Network Lock Manager (program 100021), for tests and tools: the
/// calls a client's lock manager makes, in one version (4 by default; 1 and 3 carry 32-bit
/// ranges). Every call sends a fresh cookie and checks that the reply echoes it.
package final class NLMClient: Sendable {
    let rpc: RPCClient
    package let version: UInt32

    init(rpc: RPCClient, version: UInt32) {
        self.rpc = rpc
        self.version = version
    }

    package static func connect(to address: SocketAddress, transport: RPCTransportProtocol = .tcp, version: UInt32 = 4,
                                localAddress: SocketAddress? = nil,
                                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> NLMClient {
        NLMClient(rpc: try await RPCClient.connect(to: address, transport: transport, localAddress: localAddress, group: group),
                  version: version)
    }

    package func close() async { await rpc.close() }

    /// TEST: granted, or denied with the lock in the way.
    package func test(_ lock: NLMLock, exclusive: Bool) async throws -> (NLM.Status, NLMHolder?) {
        let cookie = Self.cookie()
        var reply = try await call(.test, NLMLockArguments(cookie: cookie, exclusive: exclusive, lock: lock))
        let (echoed, status, holder) = try reply.readNLMTestResult(version: version)
        try Self.check(echoed, cookie, reply)
        return (status, holder)
    }

    package func lock(_ lock: NLMLock, exclusive: Bool, block: Bool = false, reclaim: Bool = false,
                      procedure: NLM.Procedure = .lock) async throws -> NLM.Status {
        try await status(procedure, NLMLockArguments(cookie: Self.cookie(), block: block, exclusive: exclusive, lock: lock,
                                                     reclaim: reclaim, state: 1))
    }

    package func cancel(_ lock: NLMLock, exclusive: Bool, block: Bool = true) async throws -> NLM.Status {
        try await status(.cancel, NLMLockArguments(cookie: Self.cookie(), block: block, exclusive: exclusive, lock: lock))
    }

    package func unlock(_ lock: NLMLock) async throws -> NLM.Status {
        try await status(.unlock, NLMLockArguments(cookie: Self.cookie(), lock: lock))
    }

    /// SHARE (`take`) or UNSHARE.
    package func share(_ arguments: NLMShareArguments, take: Bool = true) async throws -> NLM.Status {
        var args = ByteBuffer()
        args.writeNLMShareArguments(arguments)
        var reply = try await rpc.call(program: NLM.program, version: version,
                                       procedure: (take ? NLM.Procedure.share : .unshare).rawValue, arguments: args)
        let (echoed, status) = try reply.readNLMResult()
        _ = try reply.readXDRInt32()
        try Self.check(echoed, arguments.cookie, reply)
        return status
    }

    package func freeAll(name: String, state: Int32) async throws {
        var args = ByteBuffer()
        args.writeNLMNotify(name: name, state: state)
        let reply = try await rpc.call(program: NLM.program, version: version, procedure: NLM.Procedure.freeAll.rawValue,
                                       arguments: args)
        try reply.expectXDREnd()
    }

    /// A _MSG call (TEST_MSG, LOCK_MSG, CANCEL_MSG, UNLOCK_MSG): answered with nothing; the
    /// result comes back as a _RES call to the client's own lock manager.
    package func message(_ procedure: NLM.Procedure, _ arguments: NLMLockArguments) async throws {
        let reply = try await call(procedure, arguments)
        try reply.expectXDREnd()
    }

    func status(_ procedure: NLM.Procedure, _ arguments: NLMLockArguments) async throws -> NLM.Status {
        var reply = try await call(procedure, arguments)
        let (echoed, status) = try reply.readNLMResult()
        try Self.check(echoed, arguments.cookie, reply)
        return status
    }

    func call(_ procedure: NLM.Procedure, _ arguments: NLMLockArguments) async throws -> ByteBuffer {
        var args = ByteBuffer()
        args.writeNLMLockArguments(arguments, procedure, version: version)
        return try await rpc.call(program: NLM.program, version: version, procedure: procedure.rawValue,
                                  credentials: .sys(AuthSysParameters(machineName: "nlm-client", uid: 0, gid: 0)), arguments: args)
    }

    static func cookie() -> [UInt8] { (0..<4).map { _ in UInt8.random(in: 0...255) } }

    static func check(_ echoed: [UInt8], _ sent: [UInt8], _ rest: ByteBuffer) throws {
        guard echoed == sent else { throw XDRError(.invalidEnum, "the reply's cookie \(echoed) is not the call's \(sent)") }
        try rest.expectXDREnd()
    }
}
