import NIOCore
import XDR

// RFC 5531 appendix A:
//   struct authsys_parms { unsigned int stamp; string machinename<255>;
//       unsigned int uid; unsigned int gid; unsigned int gids<16>; };

public struct AuthSysParameters: Hashable, Sendable {
    public var stamp: UInt32
    public var machineName: String
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]

    public init(stamp: UInt32 = 0, machineName: String = "", uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
        self.stamp = stamp
        self.machineName = machineName
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }
}

extension ByteBuffer {
    public mutating func readAuthSysParameters() throws -> AuthSysParameters {
        let stamp = try self.readXDRUInt32()
        let name = try self.readXDRString(limit: RPCLimits.maxMachineName)
        let uid = try self.readXDRUInt32()
        let gid = try self.readXDRUInt32()
        let gids = try self.readXDRArray(limit: RPCLimits.maxAuthSysGroups) { try $0.readXDRUInt32() }
        return AuthSysParameters(stamp: stamp, machineName: name, uid: uid, gid: gid, groups: gids)
    }

    @discardableResult
    public mutating func writeAuthSysParameters(_ p: AuthSysParameters) -> Int {
        self.writeXDRUInt32(p.stamp) + self.writeXDRString(p.machineName) + self.writeXDRUInt32(p.uid)
            + self.writeXDRUInt32(p.gid) + self.writeXDRArray(p.groups) { $0.writeXDRUInt32($1) }
    }
}

/// Who is calling, as far as the credential says.
public enum RPCCredentials: Hashable, Sendable {
    /// AUTH_NONE: the anonymous user.
    case none
    /// AUTH_SYS.
    case sys(AuthSysParameters)

    /// Decodes the credential of a call. Returns the auth_stat to refuse it with otherwise:
    /// a malformed AUTH_SYS body is AUTH_BADCRED, a flavour we do not accept is AUTH_REJECTEDCRED
    /// (RFC 5531 §9; knfsd answers AUTH_BADCRED for unknown flavours, Linux treats both as fatal).
    public static func decode(_ cred: RPCOpaqueAuth) -> Result<RPCCredentials, RPCAuthError> {
        switch cred.flavor {
        case RPCAuthFlavor.none:
            return .success(.none)
        case RPCAuthFlavor.sys:
            var body = cred.body
            guard let p = try? body.readAuthSysParameters(), body.readableBytes == 0 else {
                return .failure(RPCAuthError(stat: .badCred))
            }
            return .success(.sys(p))
        default:
            return .failure(RPCAuthError(stat: .rejectedCred))
        }
    }

    public func encoded() -> RPCOpaqueAuth {
        switch self {
        case .none: return .none
        case .sys(let p):
            var b = ByteBuffer()
            b.writeAuthSysParameters(p)
            return RPCOpaqueAuth(flavor: RPCAuthFlavor.sys, body: b)
        }
    }
}

public struct RPCAuthError: Error, Hashable, Sendable {
    public var stat: RPCAuthStat
}
