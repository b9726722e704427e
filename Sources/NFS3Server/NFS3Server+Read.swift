import FileStore
import NFS3
import NIOCore
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.6. The data is pread into its own buffer and sent after the header.
    func read(_ call: NFS3ReadCall, context: NFS3CallContext, allocator: ByteBufferAllocator) -> NFS3ReadReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, id) = try resolve(call.file)
            resolved = (export, id)
            // The caller's identity only to open the file (READ runs without it: see
            // `NFS3Procedure.runsAsCaller`).
            let read = try export.store.read(id, offset: call.offset, count: count(call, context), allocator: allocator,
                                             caller: context.identity)
            return reply(export, read)
        } catch {
            return NFS3ReadReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }

    /// Reads up to this size are answered on the event loop when their data is in memory;
    /// larger copies would hold up the other connections of the loop.
    static let maxReadWithoutBlocking = 64 * 1024

    /// READ of a file open in the handle cache whose data the page cache holds, or nil (the
    /// call then takes the way above).
    func readFromCache(_ call: NFS3ReadCall, context: NFS3CallContext, allocator: ByteBufferAllocator) -> NFS3ReadReply? {
        let count = count(call, context)
        guard count <= Self.maxReadWithoutBlocking, let (export, id) = try? resolve(call.file),
              let read = export.store.cachedRead(id, offset: call.offset, count: count, allocator: allocator,
                                                 caller: context.identity) else { return nil }
        return reply(export, read)
    }

    func count(_ call: NFS3ReadCall, _ context: NFS3CallContext) -> Int {
        min(Int(call.count), context.rpc.transport == .udp ? NFS3.maxUDPTransferSize : NFS3.maxWriteSize)
    }

    func reply(_ export: NFS3Export, _ read: (data: ByteBuffer, eof: Bool, attributes: FileAttributes)) -> NFS3ReadReply {
        NFS3ReadReply(result: .okay(NFS3ReadOkay(
            attributes: NFS3FileAttributes(read.attributes, fsid: export.store.exportID), eof: read.eof, data: read.data)))
    }
}
