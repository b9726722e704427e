import NIOCore
import ONCRPC
import XDR

/// Program 200000 version 1 with one procedure, 1, of the given traits. On the thread pool (or
/// inline) it answers the word 2; without blocking it answers the word 1 for the xids
/// `answersWithoutBlocking` accepts, and leaves the others to the pool.
struct TestProgram: RPCProgram {
    static let number: UInt32 = 200_000
    var procedureTraits: RPCProcedureTraits
    var answersWithoutBlocking: @Sendable (UInt32) -> Bool = { _ in false }

    var program: UInt32 { Self.number }
    var versions: ClosedRange<UInt32> { 1...1 }

    func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? { procedure == 1 ? procedureTraits : nil }

    func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        results.writeXDRUInt32(2)
        return .success
    }

    func handleWithoutBlocking(_ call: RPCCall, context: RPCCallContext,
                               results: inout ByteBuffer) throws -> RPCProcedureOutcome? {
        guard answersWithoutBlocking(call.xid) else { return nil }
        results.writeXDRUInt32(1)
        return .success
    }

    /// A call of procedure 1 as a complete record.
    static func call(xid: UInt32) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeRPCCallHeader(RPCCall(xid: xid, program: number, version: 1, procedure: 1,
                                     credential: .none, verifier: .none, arguments: ByteBuffer()))
        return b
    }
}
