import FileStore
import Logging
import NFS3
import ONCRPC

/// NFSv3 over one export of `root` as the daemon serves a plain export (read-write, no
/// squashing, any client), with no transport: calls go straight to `RPCProgram.handle`.
/// For measurements of whole procedures from outside this package (the package-benchmark
/// suite `ProcedureBenchmarks`: decode, handle, file system, encode, per call); never to
/// serve. Returns the program and the export's root handle.
@_spi(Benchmarks)
public func standaloneNFS3Program(root: String, stateDirectory: String, logger: Logger) throws
    -> (program: any RPCProgram, root: NFS3FileHandle)
{
    let key = SipHash24(key: (0..<16).map { _ in UInt8.random(in: 0...255) })
    let store = try FileStore(root: root, stateDirectory: stateDirectory, exportID: 1, handleKey: key, logger: logger)
    let access = ClientAccess(readOnly: false, requirePrivilegedPort: false, rootSquash: false, allSquash: false)
    let exports = NFS3ExportRegistry([NFS3Export(path: root, store: store, authorize: { _ in access })])
    let server = NFS3Server(exports: exports, handleKey: key, logger: logger)
    return (NFS3Program(server: server), NFS3FileHandle(FileHandleFormat(exportID: 1, fileID: FileStore.rootID).bytes(key: key)))
}
