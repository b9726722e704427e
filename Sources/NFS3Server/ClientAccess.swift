import FileStore
import NFS3
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC

/// What an export grants one client: the exports(5) options that matter per call.
package struct ClientAccess: Hashable, Sendable {
    package var readOnly: Bool
    /// `secure`: calls must come from a source port below 1024.
    package var requirePrivilegedPort: Bool
    package var rootSquash: Bool
    package var allSquash: Bool
    package var anonUID: UInt32
    package var anonGID: UInt32
    /// `sync`: a change is answered only once it is on stable storage (with a journal: once
    /// the journal records covering it are).
    package var sync: Bool = true

    package init(readOnly: Bool, requirePrivilegedPort: Bool, rootSquash: Bool, allSquash: Bool,
                anonUID: UInt32 = 65534, anonGID: UInt32 = 65534, sync: Bool = true) {
        self.sync = sync
        self.readOnly = readOnly
        self.requirePrivilegedPort = requirePrivilegedPort
        self.rootSquash = rootSquash
        self.allSquash = allSquash
        self.anonUID = anonUID
        self.anonGID = anonGID
    }

    /// The identity a call runs with. AUTH_NONE is the anonymous user; `all_squash` maps
    /// everyone to it; `root_squash` maps uid 0 to anonuid and gid 0 (also among the groups) to
    /// anongid, as knfsd does.
    package func identity(for credentials: RPCCredentials) -> CallerIdentity {
        let anonymous = CallerIdentity(uid: anonUID, gid: anonGID, groups: [])
        guard case .sys(let p) = credentials, !allSquash else { return anonymous }
        var id = CallerIdentity(uid: p.uid, gid: p.gid, groups: p.groups)
        if rootSquash {
            if id.uid == 0 { id.uid = anonUID }
            if id.gid == 0 { id.gid = anonGID }
            id.groups = id.groups.map { $0 == 0 ? anonGID : $0 }
        }
        return id
    }

    /// Whether the caller's source port satisfies `secure`.
    package func portAllowed(_ address: SocketAddress?) -> Bool {
        guard requirePrivilegedPort else { return true }
        guard let port = address?.port else { return false }
        return port < 1024
    }
}

/// Everything a procedure needs to know about its call.
package struct NFS3CallContext: Sendable {
    package var rpc: RPCCallContext
    package var access: ClientAccess
    package var identity: CallerIdentity
    /// Where a change notes what its reply must wait for, when the reply can be held rather
    /// than the thread (nil: `makeDurable` waits).
    package var durability: NFS3DurabilityWait?

    package init(rpc: RPCCallContext, access: ClientAccess, identity: CallerIdentity,
                 durability: NFS3DurabilityWait? = nil) {
        self.rpc = rpc
        self.access = access
        self.identity = identity
        self.durability = durability
    }
}

