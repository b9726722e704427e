import NFS3
import NIOCore
import ONCRPC

/// The AUTH_SYS credential of every benchmark call (a user with a few groups, as a Linux client
/// sends them).
public let benchmarkCredential = RPCCredentials.sys(AuthSysParameters(machineName: "client.example", uid: 1000, gid: 1000,
                                                                      groups: [4, 24, 27, 1000]))

/// An NFSv3 call record as a client sends it (without the record mark).
public func callRecord(_ procedure: NFS3Procedure, credential: RPCCredentials = benchmarkCredential,
                       _ arguments: (inout ByteBuffer) -> Void) -> ByteBuffer {
    var b = ByteBuffer()
    b.writeRPCCallHeader(RPCCall(xid: 7, program: NFS3.program, version: NFS3.version, procedure: procedure.rawValue,
                                 credential: credential.encoded()))
    arguments(&b)
    return b
}

/// Parses the header and credential the way the dispatcher does and returns the call.
@inline(__always)
public func parse(_ record: ByteBuffer) throws -> RPCCall {
    var record = record
    guard case .call(let call) = try record.readRPCMessage() else { fatalError("not a call") }
    guard case .success = RPCCredentials.decode(call.credential) else { fatalError("bad credential") }
    return call
}

/// A reply buffer with the headroom and accepted-reply header the dispatcher writes first.
@inline(__always)
public func replyBuffer(xid: UInt32, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
    var out = allocator.buffer(capacity: 256)
    out.writeRepeatingByte(0, count: RPCReplyMessage.reservedHeadroom)
    out.writeRPCReplyHeader(xid: xid, status: .success)
    return out
}
