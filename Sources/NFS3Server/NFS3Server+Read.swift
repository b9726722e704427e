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
            let limit = context.rpc.transport == .udp ? NFS3.maxUDPTransferSize : NFS3.maxWriteSize
            let count = min(Int(call.count), limit)
            let (data, eof, a) = try export.store.read(id, offset: call.offset, count: count, allocator: allocator)
            return NFS3ReadReply(result: .okay(NFS3ReadOkay(
                attributes: NFS3FileAttributes(a, fsid: export.store.exportID), eof: eof, data: data)))
        } catch {
            return NFS3ReadReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}
