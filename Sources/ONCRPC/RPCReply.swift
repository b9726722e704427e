import NIOCore
import XDR

// RFC 5531 §9:
//   union reply_body switch (reply_stat stat) {
//       case MSG_ACCEPTED: accepted_reply areply; case MSG_DENIED: rejected_reply rreply; };
//   struct accepted_reply { opaque_auth verf; union switch (accept_stat stat) {
//       case SUCCESS: opaque results[0]; case PROG_MISMATCH: struct { unsigned int low;
//       unsigned int high; } mismatch_info; default: void; } reply_data; };
//   union rejected_reply switch (reject_stat stat) {
//       case RPC_MISMATCH: struct { unsigned int low; unsigned int high; } mismatch_info;
//       case AUTH_ERROR: auth_stat stat; };

/// Every outcome a reply header can carry.
public enum RPCReplyStatus: Hashable, Sendable {
    case success
    case progUnavail
    case progMismatch(low: UInt32, high: UInt32)
    case procUnavail
    case garbageArgs
    case systemErr
    case rpcMismatch(low: UInt32, high: UInt32)
    case authError(RPCAuthStat)
}

extension ByteBuffer {
    /// Writes a complete reply header. For `.success` the procedure's results follow.
    @discardableResult
    public mutating func writeRPCReplyHeader(xid: UInt32, status: RPCReplyStatus,
                                             verifier: RPCOpaqueAuth = .none) -> Int {
        var n = self.writeXDRUInt32(xid) + self.writeXDREnum(RPCMessageType.reply)
        func accepted(_ stat: RPCAcceptStat, _ buffer: inout ByteBuffer) -> Int {
            buffer.writeXDREnum(RPCReplyStat.accepted) + buffer.writeRPCOpaqueAuth(verifier)
                + buffer.writeXDREnum(stat)
        }
        switch status {
        case .success: n += accepted(.success, &self)
        case .progUnavail: n += accepted(.progUnavail, &self)
        case .procUnavail: n += accepted(.procUnavail, &self)
        case .garbageArgs: n += accepted(.garbageArgs, &self)
        case .systemErr: n += accepted(.systemErr, &self)
        case .progMismatch(let low, let high):
            n += accepted(.progMismatch, &self) + self.writeXDRUInt32(low) + self.writeXDRUInt32(high)
        case .rpcMismatch(let low, let high):
            n += self.writeXDREnum(RPCReplyStat.denied) + self.writeXDREnum(RPCRejectStat.rpcMismatch)
                + self.writeXDRUInt32(low) + self.writeXDRUInt32(high)
        case .authError(let stat):
            n += self.writeXDREnum(RPCReplyStat.denied) + self.writeXDREnum(RPCRejectStat.authError)
                + self.writeXDREnum(stat)
        }
        return n
    }

    /// Reads a reply body (what follows xid and msg_type); on `.success` the results are left in
    /// the buffer.
    public mutating func readRPCReplyStatus() throws -> RPCReplyStatus {
        switch try self.readXDREnum(RPCReplyStat.self) {
        case .accepted:
            _ = try self.readRPCOpaqueAuth()
            switch try self.readXDREnum(RPCAcceptStat.self) {
            case .success: return .success
            case .progUnavail: return .progUnavail
            case .procUnavail: return .procUnavail
            case .garbageArgs: return .garbageArgs
            case .systemErr: return .systemErr
            case .progMismatch:
                return .progMismatch(low: try self.readXDRUInt32(), high: try self.readXDRUInt32())
            }
        case .denied:
            switch try self.readXDREnum(RPCRejectStat.self) {
            case .rpcMismatch:
                return .rpcMismatch(low: try self.readXDRUInt32(), high: try self.readXDRUInt32())
            case .authError:
                return .authError(try self.readXDREnum(RPCAuthStat.self))
            }
        }
    }
}
