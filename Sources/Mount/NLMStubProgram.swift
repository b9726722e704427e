import NIOCore
import ONCRPC
import XDR

// The Network Lock Manager (program 100021, versions 1, 3 and 4; Open Group XNFS, and RFC 1813
// appendix II for version 4) as far as a server WITHOUT locking must speak it: a client that
// mounts without `nolock` and asks for a lock gets an immediate nlm_denied_nolocks, which the
// Linux client turns into ENOLCK, instead of retrying forever against a missing program.
//
//   struct nlm4_res { netobj cookie; nlm4_stats stat; };
//   struct nlm4_testres { netobj cookie; nlm4_testrply test_stat; };
//   struct nlm4_shareres { netobj cookie; nlm4_stats stat; int sequence; };
// Every argument structure of TEST, LOCK, CANCEL, UNLOCK and SHARE starts with `netobj cookie`,
// which the reply echoes.

public struct NLMStubProgram: RPCProgram {
    public static let program: UInt32 = 100_021
    /// nlm_denied_nolocks / NLM4_DENIED_NOLOCKS.
    static let deniedNoLocks: UInt32 = 2
    static let granted: UInt32 = 0
    /// netobj is opaque<MAXNETOBJ_SZ = 1024>.
    static let maxNetobj = 1024

    public init() {}

    public var program: UInt32 { Self.program }
    public var versions: ClosedRange<UInt32> { 1...4 }

    public func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        guard version != 2 else { return nil }
        switch procedure {
        case 0, 1, 2, 3, 4, 20, 21, 23: return .inline
        default: return nil
        }
    }

    public func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        var args = call.arguments
        switch call.procedure {
        case 0:  // NULL
            try args.expectXDREnd()
        case 23:  // FREE_ALL: void result
            break
        default:
            let cookie = try args.readXDRVariableOpaque(limit: Self.maxNetobj)
            results.writeXDRVariableOpaque(cookie)
            switch call.procedure {
            case 4, 21:  // UNLOCK, UNSHARE: nothing is held, so nothing to release
                results.writeXDRUInt32(Self.granted)
            default:  // TEST, LOCK, CANCEL, SHARE
                results.writeXDRUInt32(Self.deniedNoLocks)
            }
            if call.procedure == 20 || call.procedure == 21 { results.writeXDRInt32(0) }  // sequence
        }
        return .success
    }
}
