import NIOConcurrencyHelpers
import NIOCore
import ONCRPC
import XDR

/// What the MOUNT program needs from the server's configuration (injected).
public protocol MountExportTable: Sendable {
    /// The root handle for `path` (an export or a directory below one) if `client` may mount it.
    func mount(path: String, client: SocketAddress?, credentials: RPCCredentials) -> Result<MountOkay, MountStatus>
    /// The export list for EXPORT.
    func exportList() -> [ExportEntry]
}

/// MOUNT v1 and v3 (RFC 1813 appendix I). Both versions share every procedure but MNT, which
/// differs only in its result. The mount list for DUMP is kept like knfsd's rmtab (in memory).
public struct MountProgram: RPCProgram {
    let table: any MountExportTable
    let mounts = NIOLockedValueBox<[MountEntry]>([])

    public init(table: any MountExportTable) {
        self.table = table
    }

    public var program: UInt32 { Mount.program }
    public var versions: ClosedRange<UInt32> { Mount.versions }

    public func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        guard version != 2 else { return nil }
        switch procedure {
        case MountProcedure.null, MountProcedure.dump, MountProcedure.export: return .inline
        case MountProcedure.mnt: return .read
        case MountProcedure.umnt, MountProcedure.umntall: return .inline
        default: return nil
        }
    }

    public func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        var args = call.arguments
        let host = context.remoteAddress?.ipAddress ?? "unknown"
        switch call.procedure {
        case MountProcedure.null:
            try args.expectXDREnd()
        case MountProcedure.mnt:
            let path = try args.readMountPath()
            try args.expectXDREnd()
            let result = table.mount(path: path, client: context.remoteAddress, credentials: context.credentials)
            if case .success = result {
                let entry = MountEntry(hostname: host, directory: path)
                mounts.withLockedValue { if !$0.contains(entry) { $0.append(entry) } }
            }
            if call.version == 3 { results.writeMountResult3(result) } else { results.writeMountResult1(result) }
        case MountProcedure.dump:
            try args.expectXDREnd()
            results.writeMountList(mounts.withLockedValue { $0 })
        case MountProcedure.umnt:
            let path = try args.readMountPath()
            try args.expectXDREnd()
            mounts.withLockedValue { $0.removeAll { $0.hostname == host && $0.directory == path } }
        case MountProcedure.umntall:
            try args.expectXDREnd()
            mounts.withLockedValue { $0.removeAll { $0.hostname == host } }
        case MountProcedure.export:
            try args.expectXDREnd()
            results.writeExportList(table.exportList())
        default:
            return .failure(.procUnavail)
        }
        return .success
    }
}
