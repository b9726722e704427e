import FileStore
import Glibc
import Mount
import NFS3Server
import NIOCore
import ONCRPC

/// The exports as MOUNT sees them: who may mount what, and the root handle to give them.
struct ExportTable: MountExportTable {
    let entries: [(config: ExportEntryConfig, export: NFS3Export)]

    func mount(path: String, client: SocketAddress?, credentials: RPCCredentials) -> Result<MountOkay, MountStatus> {
        var requested = path
        while requested.count > 1 && requested.hasSuffix("/") { requested.removeLast() }
        // The longest export that is the path or an ancestor of it.
        let candidates = entries.filter { requested == $0.config.path || requested.hasPrefix($0.config.path == "/" ? "/" : $0.config.path + "/") }
        guard let (config, export) = candidates.max(by: { $0.config.path.count < $1.config.path.count }) else {
            return .failure(.noent)
        }
        guard let address = client.flatMap(addressBytes),
              config.options(address: address, hostname: nil) != nil else {
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
        entries.map { ExportEntry(directory: $0.config.path, groups: $0.config.clients.map { "\($0.0)" }) }
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
