import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.4: what the caller may do, from the permission bits and the caller's
    /// AUTH_SYS identity (AUTH_NONE callers are the anonymous user).
    func access(_ call: NFS3AccessCall, context: RPCCallContext) -> NFS3AccessReply {
        do {
            let (export, id) = try resolve(call.object)
            let a = try attributes(export, id)
            var granted = Self.permittedAccess(a, caller: Caller(context.credentials)) & call.access
            if export.readOnly {
                granted &= ~(NFS3AccessMask.modify | NFS3AccessMask.extend | NFS3AccessMask.delete)
            }
            return NFS3AccessReply(result: .okay(NFS3AccessOkay(attributes: a, access: granted)))
        } catch {
            return NFS3AccessReply(result: .fail(NFS3Status(error), nil))
        }
    }

    static func permittedAccess(_ a: NFS3FileAttributes, caller: Caller) -> UInt32 {
        let r: UInt32, w: UInt32, x: UInt32
        if caller.uid == 0 {
            // Root may read and write anything, and execute what has any execute bit.
            r = 1; w = 1
            x = (a.type == .directory || a.mode & 0o111 != 0) ? 1 : 0
        } else {
            let shift: UInt32 = caller.uid == a.uid ? 6 : (caller.groups.contains(a.gid) ? 3 : 0)
            let bits = (a.mode >> shift) & 7
            r = bits >> 2 & 1; w = bits >> 1 & 1; x = bits & 1
        }
        var mask: UInt32 = 0
        if r == 1 { mask |= NFS3AccessMask.read }
        if w == 1 { mask |= NFS3AccessMask.modify | NFS3AccessMask.extend }
        if a.type == .directory {
            if x == 1 { mask |= NFS3AccessMask.lookup }
            if w == 1 && x == 1 { mask |= NFS3AccessMask.delete }
        } else if x == 1 {
            mask |= NFS3AccessMask.execute
        }
        return mask
    }
}

/// The caller's identity as the credential gives it.
struct Caller {
    var uid: UInt32
    var groups: Set<UInt32>

    init(_ credentials: RPCCredentials) {
        switch credentials {
        case .sys(let p):
            uid = p.uid
            groups = Set([p.gid] + p.groups)
        case .none:
            uid = 65534
            groups = [65534]
        }
    }
}
