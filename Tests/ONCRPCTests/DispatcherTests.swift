import NIOCore
import ONCRPC
import Testing
import XDR

/// A program with one procedure that echoes a uint32 and one that needs AUTH_SYS.
struct EchoProgram: RPCProgram {
    var program: UInt32 { 200_000 }
    var versions: ClosedRange<UInt32> { 2...3 }
    func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        procedure <= 2 ? .inline : nil
    }
    func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        var args = call.arguments
        switch call.procedure {
        case 0:
            try args.expectXDREnd()
            return .success
        case 1:
            let v = try args.readXDRUInt32()
            try args.expectXDREnd()
            results.writeXDRUInt32(v &+ 1)
            return .success
        default:
            struct Boom: Error {}
            throw Boom()
        }
    }
}

@Suite struct DispatcherTests {
    let dispatcher = RPCDispatcher(programs: [EchoProgram()])
    let allocator = ByteBufferAllocator()

    func record(xid: UInt32 = 7, rpcvers: UInt32 = 2, prog: UInt32 = 200_000, vers: UInt32 = 2, proc: UInt32 = 1,
                cred: RPCOpaqueAuth = .none, args: [UInt32] = [41]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeXDRUInt32(xid)
        b.writeXDRUInt32(0)
        b.writeXDRUInt32(rpcvers)
        b.writeXDRUInt32(prog)
        b.writeXDRUInt32(vers)
        b.writeXDRUInt32(proc)
        b.writeRPCOpaqueAuth(cred)
        b.writeRPCOpaqueAuth(.none)
        for a in args { b.writeXDRUInt32(a) }
        return b
    }

    /// Routes and runs a record; returns the reply status and the remaining result bytes.
    func exchange(_ record: ByteBuffer) throws -> (UInt32, RPCReplyStatus, ByteBuffer)? {
        let reply: RPCReplyMessage
        switch dispatcher.route(record: record, remoteAddress: nil, localAddress: nil, transport: .tcp, allocator: allocator) {
        case .drop: return nil
        case .reply(let r): reply = r
        case .execute(let p): reply = RPCDispatcher.execute(p, allocator: allocator)
        }
        var d = reply.datagram()
        let xid = try d.readXDRUInt32()
        #expect(try d.readXDREnum(RPCMessageType.self) == .reply)
        let status = try d.readRPCReplyStatus()
        return (xid, status, d)
    }

    @Test func successCarriesResults() throws {
        let (xid, status, rest) = try #require(try exchange(record(args: [41])))
        #expect(xid == 7)
        #expect(status == .success)
        var r = rest
        #expect(try r.readXDRUInt32() == 42)
    }

    @Test func rpcMismatch() throws {
        let (_, status, _) = try #require(try exchange(record(rpcvers: 3)))
        #expect(status == .rpcMismatch(low: 2, high: 2))
    }

    @Test func progUnavail() throws {
        #expect(try exchange(record(prog: 1))?.1 == .progUnavail)
    }

    @Test func progMismatchGivesTheSupportedRange() throws {
        #expect(try exchange(record(vers: 4))?.1 == .progMismatch(low: 2, high: 3))
    }

    @Test func procUnavail() throws {
        #expect(try exchange(record(proc: 9))?.1 == .procUnavail)
    }

    @Test func garbageArgs() throws {
        #expect(try exchange(record(args: []))?.1 == .garbageArgs)
        #expect(try exchange(record(args: [1, 2]))?.1 == .garbageArgs)
    }

    @Test func systemErr() throws {
        #expect(try exchange(record(proc: 2, args: []))?.1 == .systemErr)
    }

    @Test func unknownAuthFlavourIsAnAuthError() throws {
        let gss = RPCOpaqueAuth(flavor: RPCAuthFlavor.rpcsecGSS, body: ByteBuffer(bytes: [0, 0, 0, 1]))
        #expect(try exchange(record(cred: gss))?.1 == .authError(.rejectedCred))
    }

    @Test func malformedAuthSysIsBadCred() throws {
        let bad = RPCOpaqueAuth(flavor: RPCAuthFlavor.sys, body: ByteBuffer(bytes: [0, 0, 0, 1]))
        #expect(try exchange(record(cred: bad))?.1 == .authError(.badCred))
    }

    @Test func authSysIsAccepted() throws {
        let cred = RPCCredentials.sys(AuthSysParameters(machineName: "client", uid: 1000, gid: 100, groups: [4, 24]))
        #expect(try exchange(record(cred: cred.encoded()))?.1 == .success)
        var body = cred.encoded().body
        #expect(try body.readAuthSysParameters().groups == [4, 24])
    }

    @Test func truncatedHeaderIsDroppedNotAnswered() throws {
        var r = record()
        r.moveWriterIndex(to: 10)
        #expect(try exchange(r) == nil)
    }

    @Test func duplicateRequestCacheReplaysAndWaits() throws {
        let cache = DuplicateRequestCache(capacity: 2)
        let call = RPCCall(xid: 1, program: 100_003, version: 3, procedure: 8, arguments: ByteBuffer(bytes: [1, 2, 3, 4]))
        let key = DuplicateRequestCache.Key(call: call, client: try SocketAddress(ipAddress: "127.0.0.1", port: 800))
        guard case .execute = cache.begin(key, waiter: nil) else { Issue.record("expected execute"); return }
        let got = NIOLockedBox()
        guard case .waiting = cache.begin(key, waiter: { got.set($0.xid) }) else { Issue.record("expected waiting"); return }
        let reply = RPCDispatcher.errorReply(xid: 1, .systemErr, allocator: allocator)
        cache.complete(key, reply: reply)
        #expect(got.value == 1)
        guard case .replay(let r) = cache.begin(key, waiter: nil) else { Issue.record("expected replay"); return }
        #expect(r.xid == 1)
        // Other arguments under the same xid are a different call.
        var other = call
        other.arguments = ByteBuffer(bytes: [9, 9, 9, 9])
        let otherKey = DuplicateRequestCache.Key(call: other, client: try SocketAddress(ipAddress: "127.0.0.1", port: 800))
        guard case .execute = cache.begin(otherKey, waiter: nil) else { Issue.record("expected execute"); return }
        #expect(cache.hits == 2)
    }
}

final class NIOLockedBox: @unchecked Sendable {
    private var v: UInt32?
    func set(_ x: UInt32) { v = x }
    var value: UInt32? { v }
}
