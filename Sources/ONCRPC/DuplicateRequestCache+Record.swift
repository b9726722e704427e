import NIOCore
import XDR

// One completed entry of the duplicate request cache as it is kept outside the process (a
// server's journal, which an HA standby follows), in XDR (RFC 4506):
//
//   struct drc_entry {
//       unsigned hyper recorded;          /* when the reply was made: seconds since 1970 */
//       unsigned hyper address_high;      /* the client: an IPv6 address's bytes, an IPv4 */
//       unsigned hyper address_low;       /*   address, or a hash of a local socket's path */
//       unsigned int   port;              /* the client's port, its address family above it */
//       unsigned int   xid;
//       unsigned int   prog;
//       unsigned int   vers;
//       unsigned int   proc;
//       unsigned hyper arguments_length;
//       unsigned hyper arguments_checksum;
//       opaque         reply<DRC_MAX_REPLY>; /* the whole reply message, from its xid on */
//   };
//
// The key's fields are the cache's own (`DuplicateRequestCache.Key`): a process that reads the
// entry keys it exactly as the process that ran the call did. The time lets it leave out an
// entry too old for any client to be retransmitting its call still.

/// Keeps the replies of changes beyond the process that made them (a server's journal): what
/// a client may send again after a takeover or a restart is answered with the original reply
/// there, not executed a second time (`DuplicateRequestCache.remember`).
public protocol DuplicateReplyRecorder: Sendable {
    /// Records the reply of the call keyed `key`, before the reply is released, and returns the
    /// reply to release in its place: one whose hold (if it had one: the change is answered only
    /// once stable) also covers the record, so that a client never hears of a change whose
    /// reply a retransmission would not find.
    func record(_ key: DuplicateRequestCache.Key, reply: RPCReplyMessage) -> RPCReplyMessage
}

extension DuplicateRequestCache {
    /// A recorded reply: larger ones are not recorded (the replies of changes are a few
    /// hundred bytes: status, weak cache consistency data, a handle and attributes).
    public static let maxRecordedReply = 4096
    /// How long an entry is taken in after its reply was made (`remember(encoded:notBefore:)`):
    /// a client retransmits within its timeouts of the outage (a takeover, a restart), not
    /// after this; knfsd keeps its entries 2 minutes.
    public static let recordedReplyLifetime: UInt64 = 600

    /// The entry of `key` and its `reply`, made at `recorded` (seconds since 1970), as
    /// `DuplicateReplyRecorder`s keep it (see the XDR above), or nil when the reply is too
    /// large to keep.
    public static func encode(_ key: Key, reply: RPCReplyMessage, recorded: UInt64) -> [UInt8]? {
        guard reply.length <= maxRecordedReply else { return nil }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(72 + reply.length)
        buffer.writeXDRUInt64(recorded)
        buffer.writeXDRUInt64(key.addressHigh)
        buffer.writeXDRUInt64(key.addressLow)
        buffer.writeXDRUInt32(key.port)
        buffer.writeXDRUInt32(key.xid)
        buffer.writeXDRUInt32(key.program)
        buffer.writeXDRUInt32(key.version)
        buffer.writeXDRUInt32(key.procedure)
        buffer.writeXDRUInt64(UInt64(key.argumentsLength))
        buffer.writeXDRUInt64(key.argumentsChecksum)
        var bytes = reply.header.getSlice(at: reply.header.readerIndex + RPCReplyMessage.reservedHeadroom,
                                          length: reply.header.readableBytes - RPCReplyMessage.reservedHeadroom)!
        if var payload = reply.payload { bytes.writeBuffer(&payload) }
        buffer.writeXDRVariableOpaque(bytes)
        return Array(buffer.readableBytesView)
    }

    /// Decodes an entry `encode` made; throws `XDRError` on anything else (truncated, trailing
    /// bytes, a reply too large or not of the key's xid).
    public static func decode(_ entry: [UInt8]) throws -> (key: Key, reply: RPCReplyMessage, recorded: UInt64) {
        var buffer = ByteBuffer(bytes: entry)
        let recorded = try buffer.readXDRUInt64()
        var key = Key(addressHigh: try buffer.readXDRUInt64(), addressLow: try buffer.readXDRUInt64(), port: try buffer.readXDRUInt32(),
                      xid: try buffer.readXDRUInt32(), program: try buffer.readXDRUInt32(), version: try buffer.readXDRUInt32(),
                      procedure: try buffer.readXDRUInt32(), argumentsLength: 0, argumentsChecksum: 0)
        let length = try buffer.readXDRUInt64()
        guard length <= UInt64(RPCLimits.maxRecordSize) else { throw XDRError(.lengthExceedsLimit, "arguments of \(length) bytes") }
        key.argumentsLength = Int(length)
        key.argumentsChecksum = try buffer.readXDRUInt64()
        var reply = try buffer.readXDRVariableOpaque(limit: maxRecordedReply)
        try buffer.expectXDREnd()
        guard reply.getInteger(at: reply.readerIndex, as: UInt32.self) == key.xid else {
            throw XDRError(.invalidEnum, "a recorded reply not of xid \(key.xid)")
        }
        var header = ByteBuffer()
        header.reserveCapacity(RPCReplyMessage.reservedHeadroom + reply.readableBytes)
        header.writeRepeatingByte(0, count: RPCReplyMessage.reservedHeadroom)
        header.writeBuffer(&reply)
        return (key, RPCReplyMessage(xid: key.xid, header: header, payload: nil), recorded)
    }

    /// Takes in an entry another process recorded (`remember`), unless it was made before
    /// `notBefore` (seconds since 1970: now less `recordedReplyLifetime`); returns whether it did.
    @discardableResult
    public func remember(encoded entry: [UInt8], notBefore: UInt64) throws -> Bool {
        let (key, reply, recorded) = try Self.decode(entry)
        guard recorded >= notBefore else { return false }
        remember(key, reply: reply)
        return true
    }
}
