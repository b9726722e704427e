import Journal
import NIOCore
import XDR

// The replication link between an HA active and a standby, over TCP (`--ha-replication-port`).
// Every message is framed the same way, so a reader knows its bounded size before its body:
//
//   struct message {
//       unsigned int kind;         /* one of the kinds below */
//       unsigned int length;       /* bytes of the body; at most ReplicationLimits.maxBody */
//       opaque body[length];       /* no padding: the body is exactly `length` bytes */
//   };
//
//   HELLO = 1     standby -> active, first:  opaque magic[8] "SNFSREPL"; unsigned int version;
//                                            string name<255>; unsigned hyper after;
//                                            unsigned hyper epoch;
//                                            ("send me every record after `after`", whose epoch
//                                            is `epoch` here; 0: not known)
//   ACK = 2       standby -> active:         unsigned hyper durable;
//                                            (every record through `durable` is fsynced here)
//   FRAME = 3     active -> standby:         one journal frame, byte for byte as in the active's
//                                            segment (length, CRC-32C, record; JournalFormat)
//   POSITION = 4  active -> standby, ~4/s:   unsigned hyper appended; unsigned hyper lag_bytes;
//                                            bool in_sync;  (what the active makes of this
//                                            standby, which it publishes as its own member record)
//   FULL_COPY_NEEDED = 5  active -> standby: unsigned hyper oldest; unsigned hyper appended;
//                                            string reason<1024>;  (the journal no longer reaches
//                                            back to `after + 1`, the standby is ahead of it, or
//                                            its record `after` is of another epoch than the
//                                            active's: another history)
//   REFUSED = 6   active -> standby:         string reason<1024>;  (not the active, bad hello)
//
// Version 3 adds the full copy, sent instead of FULL_COPY_NEEDED to a standby whose HELLO says
// version 3 or later (a version 2 standby is still told FULL_COPY_NEEDED; an active of version
// 2 refuses a version 3 HELLO: it logs the version and closes the connection, which the
// standby reports as closed without an answer):
//
//   FULL_COPY_BEGIN = 7  active -> standby:  unsigned hyper sequence;  (the checkpoint copied)
//                                            unsigned hyper highest_file_id;
//                                            unsigned hyper files; unsigned hyper bytes;
//                                            (regular files and their bytes, for the progress)
//   FULL_COPY_ENTRY = 8  active -> standby:  one object (ReplicationMessage+FullCopy.swift)
//   FULL_COPY_DATA = 9   active -> standby:  opaque data<1048576>;  (the next bytes of the
//                                            regular file whose entry came last)
//   FULL_COPY_END = 10   active -> standby:  unsigned hyper entries;  (then FRAMEs after `sequence`)
//   FULL_COPY_DONE = 11  standby -> active:  unsigned hyper sequence;  (installed: the ACKs
//                                            from now on are of the copied history)
//
// The standby answers every POSITION with an ACK, so the active hears from a live standby
// several times a second even when nothing is written.
package enum ReplicationMessage: Hashable, Sendable {
    /// `epoch`: of the standby's record `after` (0 when it cannot tell: none, or checkpointed away).
    /// `version`: the protocol version the standby speaks (3 and later take a full copy).
    case hello(name: String, after: UInt64, epoch: UInt64 = 0, version: UInt32 = ReplicationLimits.version)
    case ack(durable: UInt64)
    case frame(ByteBuffer)
    case position(appended: UInt64, lagBytes: UInt64, inSync: Bool)
    case fullCopyNeeded(oldest: UInt64, appended: UInt64, reason: String)
    case refused(String)
    case fullCopyBegin(sequence: UInt64, highestFileID: UInt64, files: UInt64, bytes: UInt64)
    case fullCopyEntry(FullCopyEntry)
    case fullCopyData(ByteBuffer)
    case fullCopyEnd(entries: UInt64)
    case fullCopyDone(sequence: UInt64)

    enum Kind: UInt32 {
        case hello = 1, ack, frame, position, fullCopyNeeded, refused
        case fullCopyBegin, fullCopyEntry, fullCopyData, fullCopyEnd, fullCopyDone
    }
}

package enum ReplicationLimits {
    package static let magic: [UInt8] = Array("SNFSREPL".utf8)
    /// 2: HELLO says the epoch of the standby's last record. 3: the full copy.
    package static let version: UInt32 = 3
    /// The oldest version a peer may speak: a version 2 standby is told FULL_COPY_NEEDED.
    package static let oldestVersion: UInt32 = 2
    /// The first version that takes a full copy.
    package static let fullCopyVersion: UInt32 = 3
    /// A message's header: kind and length.
    package static let headerSize = 8
    /// The largest body: a journal frame of the largest record.
    package static let maxBody = JournalFormat.frameHeaderSize + JournalLimits.maxRecord
    package static let maxName = 255
    package static let maxReason = 1024
}

extension ByteBuffer {
    /// Writes one whole message (header and body); returns the bytes written.
    @discardableResult
    package mutating func writeReplicationMessage(_ message: ReplicationMessage) -> Int {
        let start = writerIndex
        writeXDRUInt32(message.kind.rawValue)
        writeXDRUInt32(0)  // the length, set below
        switch message {
        case .hello(let name, let after, let epoch, let version):
            writeBytes(ReplicationLimits.magic)
            writeXDRUInt32(version)
            writeXDRString(name)
            writeXDRUInt64(after)
            writeXDRUInt64(epoch)
        case .ack(let durable):
            writeXDRUInt64(durable)
        case .frame(var frame):
            writeBuffer(&frame)
        case .position(let appended, let lag, let inSync):
            writeXDRUInt64(appended)
            writeXDRUInt64(lag)
            writeXDRBool(inSync)
        case .fullCopyNeeded(let oldest, let appended, let reason):
            writeXDRUInt64(oldest)
            writeXDRUInt64(appended)
            writeXDRString(reason)
        case .refused(let reason):
            writeXDRString(reason)
        case .fullCopyBegin, .fullCopyEntry, .fullCopyData, .fullCopyEnd, .fullCopyDone:
            writeFullCopyBody(message)
        }
        setInteger(UInt32(writerIndex - start - ReplicationLimits.headerSize), at: start + 4)
        return writerIndex - start
    }

    /// Reads one message if the buffer holds a whole one (nil: need more bytes, the buffer left
    /// alone). Throws on an unknown kind, a body past its limit, or a body that does not parse
    /// exactly (truncated, trailing bytes, a bad magic or version).
    package mutating func readReplicationMessage() throws -> ReplicationMessage? {
        guard let kindValue = getInteger(at: readerIndex, as: UInt32.self),
              let length = getInteger(at: readerIndex + 4, as: UInt32.self).map(Int.init) else { return nil }
        guard let kind = ReplicationMessage.Kind(rawValue: kindValue) else {
            throw ReplicationError(.protocolViolation, "unknown message kind \(kindValue)")
        }
        guard length <= ReplicationLimits.maxBody else {
            throw ReplicationError(.protocolViolation, "message of \(length) bytes, more than \(ReplicationLimits.maxBody)")
        }
        guard readableBytes >= ReplicationLimits.headerSize + length else { return nil }
        moveReaderIndex(forwardBy: ReplicationLimits.headerSize)
        var body = readSlice(length: length)!
        let message = try ReplicationMessage.parse(kind, &body)
        try body.expectXDREnd()
        return message
    }
}

extension ReplicationMessage {
    var kind: Kind {
        switch self {
        case .hello: return .hello
        case .ack: return .ack
        case .frame: return .frame
        case .position: return .position
        case .fullCopyNeeded: return .fullCopyNeeded
        case .refused: return .refused
        case .fullCopyBegin: return .fullCopyBegin
        case .fullCopyEntry: return .fullCopyEntry
        case .fullCopyData: return .fullCopyData
        case .fullCopyEnd: return .fullCopyEnd
        case .fullCopyDone: return .fullCopyDone
        }
    }

    static func parse(_ kind: Kind, _ body: inout ByteBuffer) throws -> ReplicationMessage {
        switch kind {
        case .hello:
            guard body.readBytes(length: ReplicationLimits.magic.count) == ReplicationLimits.magic else {
                throw ReplicationError(.protocolViolation, "not a SwiftNFS replication peer (bad magic)")
            }
            let version = try body.readXDRUInt32()
            guard (ReplicationLimits.oldestVersion...ReplicationLimits.version).contains(version) else {
                throw ReplicationError(.protocolViolation, "replication protocol version \(version), this server speaks \(ReplicationLimits.oldestVersion) to \(ReplicationLimits.version)")
            }
            let name = try body.readXDRString(limit: ReplicationLimits.maxName)
            return .hello(name: name, after: try body.readXDRUInt64(), epoch: try body.readXDRUInt64(), version: version)
        case .ack:
            return .ack(durable: try body.readXDRUInt64())
        case .frame:
            // Checked by the receiver (`JournalFormat.record(inFrame:)`), which says why it refuses one.
            return .frame(body.readSlice(length: body.readableBytes)!)
        case .position:
            return .position(appended: try body.readXDRUInt64(), lagBytes: try body.readXDRUInt64(), inSync: try body.readXDRBool())
        case .fullCopyNeeded:
            return .fullCopyNeeded(oldest: try body.readXDRUInt64(), appended: try body.readXDRUInt64(),
                                   reason: try body.readXDRString(limit: ReplicationLimits.maxReason))
        case .refused:
            return .refused(try body.readXDRString(limit: ReplicationLimits.maxReason))
        case .fullCopyBegin, .fullCopyEntry, .fullCopyData, .fullCopyEnd, .fullCopyDone:
            return try parseFullCopy(kind, &body)
        }
    }
}

/// The NIO codec of `ReplicationMessage`, in both directions.
package struct ReplicationMessageDecoder: ByteToMessageDecoder {
    package typealias InboundOut = ReplicationMessage
    package init() {}

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try buffer.readReplicationMessage() else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }
}

package struct ReplicationMessageEncoder: MessageToByteEncoder {
    package typealias OutboundIn = ReplicationMessage
    package init() {}

    package func encode(data: ReplicationMessage, out: inout ByteBuffer) throws {
        out.writeReplicationMessage(data)
    }
}

extension Channel {
    /// The replication codec on this channel's pipeline, and the channel wrapped for async use.
    package func replicationAsyncChannel() throws -> NIOAsyncChannel<ReplicationMessage, ReplicationMessage> {
        try pipeline.syncOperations.addHandler(ByteToMessageHandler(ReplicationMessageDecoder()))
        try pipeline.syncOperations.addHandler(MessageToByteHandler(ReplicationMessageEncoder()))
        return try NIOAsyncChannel(wrappingChannelSynchronously: self)
    }
}
