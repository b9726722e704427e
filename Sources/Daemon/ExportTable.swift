import FileStore
import Glibc
import Logging
import Mount
import NFS3Server
import NIOCore
import ONCRPC

/// The exports as MOUNT sees them: who may mount what, and the root handle to give them.
struct ExportTable: MountExportTable {
    let exports: LiveExports
    let logger: Logger
    let refusals = RefusalLog()

    func refuse(_ peer: SocketAddress?, path: String, reason: String) {
        let address = peer?.ipAddress ?? "-"
        guard refusals.shouldLog("\(address) \(path) \(reason)") else { return }
        logger.warning("mount refused", metadata: [
            "mount.client": "\(address)", "mount.port": "\(peer?.port ?? 0)", "mount.export": "\(path)", "mount.reason": "\(reason)",
        ])
    }

    func mount(path: String, client: SocketAddress?, credentials: RPCCredentials) -> Result<MountOkay, MountStatus> {
        var requested = path
        while requested.count > 1 && requested.hasSuffix("/") { requested.removeLast() }
        // The longest export that is the path or an ancestor of it.
        let candidates = exports.current.filter { requested == $0.config.path || requested.hasPrefix($0.config.path == "/" ? "/" : $0.config.path + "/") }
        guard let (config, export) = candidates.max(by: { $0.config.path.count < $1.config.path.count }) else {
            return .failure(.noent)
        }
        guard let access = config.access(for: client) else {
            refuse(client, path: config.path, reason: "not a client of this export")
            return .failure(.acces)
        }
        guard access.portAllowed(client) else {
            refuse(client, path: config.path, reason: "source port 1024 or above on a secure export")
            return .failure(.acces)
        }
        let rest = requested.dropFirst(config.path == "/" ? 1 : config.path.count).split(separator: "/")
        var id = FileStore.rootID
        do {
            for component in rest {
                guard component != "..", component != "." else { return .failure(.inval) }
                let a = try export.store.lookup(id, name: Array(component.utf8))
                guard a.type == .directory else { return .failure(.notdir) }
                id = a.fileID
            }
        } catch let e as StoreError {
            return .failure(e.code == .notFound ? .noent : e.code == .notDirectory ? .notdir : .acces)
        } catch {
            return .failure(.serverfault)
        }
        return .success(MountOkay(fileHandle: export.store.handle(for: id), authFlavors: [RPCAuthFlavor.sys]))
    }

    func exportList() -> [ExportEntry] {
        exports.current.map { ExportEntry(directory: $0.config.path, groups: $0.config.clients.map { "\($0.0)" }) }
    }
}

/// The 4 (IPv4) or 16 (IPv6) bytes of a socket address.
func addressBytes(_ address: SocketAddress) -> [UInt8]? {
    switch address {
    case .v4(let a): return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
    case .v6(let a): return withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
    default: return nil
    }
}

extension ExportEntryConfig {
    /// What this export grants a caller at `address`: the options of the first client
    /// specification that matches, or nil.
    func access(for address: SocketAddress?) -> ClientAccess? {
        guard let address, let bytes = addressBytes(address), let o = options(address: bytes, hostname: nil) else {
            return nil
        }
        return ClientAccess(readOnly: o.readOnly, requirePrivilegedPort: o.secure, rootSquash: o.rootSquash,
                            allSquash: o.allSquash, anonUID: o.anonUID, anonGID: o.anonGID, sync: o.sync)
    }
}
