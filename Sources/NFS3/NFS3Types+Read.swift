import NIOCore
import XDR

// RFC 1813 §3.3.6 READ:
//   struct READ3args { nfs_fh3 file; offset3 offset; count3 count; };
//   struct READ3resok { post_op_attr file_attributes; count3 count; bool eof; opaque data<>; };
//   struct READ3resfail { post_op_attr file_attributes; };
//
// The data is never copied into the header buffer: the reply is written up to and including the
// length of `data`, and the data (pread straight into its own buffer, with its XDR fill bytes
// already appended) travels to the socket as a separate buffer.

public struct NFS3ReadCall: Hashable, Sendable {
    public var file: NFS3FileHandle
    public var offset: UInt64
    public var count: UInt32
    public init(file: NFS3FileHandle, offset: UInt64, count: UInt32) { self.file = file; self.offset = offset; self.count = count }
}

public struct NFS3ReadOkay: Sendable {
    public var attributes: NFS3FileAttributes?
    public var eof: Bool
    /// The bytes read (without fill bytes).
    public var data: ByteBuffer
    public init(attributes: NFS3FileAttributes?, eof: Bool, data: ByteBuffer) {
        self.attributes = attributes; self.eof = eof; self.data = data
    }
}

public struct NFS3ReadReply: Sendable {
    public var result: NFS3Result<NFS3ReadOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3ReadOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3ReadCall() throws -> NFS3ReadCall {
        NFS3ReadCall(file: try readNFS3FileHandle(), offset: try readXDRUInt64(), count: try readXDRUInt32())
    }

    @discardableResult
    public mutating func writeNFS3ReadCall(_ call: NFS3ReadCall) -> Int {
        writeNFS3FileHandle(call.file) + writeXDRUInt64(call.offset) + writeXDRUInt32(call.count)
    }

    /// Writes the reply header; for NFS3_OK returns the data with its fill bytes as a separate
    /// buffer to send after the header. The data buffer should have 3 bytes of spare capacity so
    /// the fill bytes do not cause a reallocation.
    public mutating func writeNFS3ReadReplyPartially(_ reply: NFS3ReadReply) -> ByteBuffer? {
        switch reply.result {
        case .okay(let ok):
            writeNFS3Status(.ok)
            writeNFS3PostOpAttributes(ok.attributes)
            let count = ok.data.readableBytes
            writeXDRUInt32(UInt32(count))
            writeXDRBool(ok.eof)
            writeXDRUInt32(UInt32(count))
            var data = ok.data
            data.writeXDRPadding(after: count)
            return data
        case .fail(let status, let attributes):
            writeNFS3Status(status)
            writeNFS3PostOpAttributes(attributes)
            return nil
        }
    }

    /// Writes the whole reply into one buffer (clients and tests).
    @discardableResult
    public mutating func writeNFS3ReadReply(_ reply: NFS3ReadReply) -> Int {
        let start = writerIndex
        if var data = writeNFS3ReadReplyPartially(reply) { writeBuffer(&data) }
        return writerIndex - start
    }

    public mutating func readNFS3ReadReply() throws -> NFS3ReadReply {
        NFS3ReadReply(result: try readNFS3Result(okay: { b in
            let attributes = try b.readNFS3PostOpAttributes()
            let count = try b.readXDRUInt32()
            let eof = try b.readXDRBool()
            let data = try b.readXDRVariableOpaque(limit: Int(count))
            return NFS3ReadOkay(attributes: attributes, eof: eof, data: data)
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }
}
