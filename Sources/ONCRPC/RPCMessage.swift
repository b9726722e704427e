import NIOCore
import XDR

// RFC 5531 §9:
//   struct opaque_auth { auth_flavor flavor; opaque body<400>; };
//   struct rpc_msg { unsigned int xid; union switch (msg_type mtype) {
//       case CALL: call_body cbody; case REPLY: reply_body rbody; } body; };
//   struct call_body { unsigned int rpcvers; unsigned int prog; unsigned int vers;
//       unsigned int proc; opaque_auth cred; opaque_auth verf; /* procedure-specific parameters */ };

public struct RPCOpaqueAuth: Hashable, Sendable {
    public var flavor: UInt32
    public var body: ByteBuffer

    public init(flavor: UInt32, body: ByteBuffer = ByteBuffer()) {
        self.flavor = flavor
        self.body = body
    }

    public static let none = RPCOpaqueAuth(flavor: RPCAuthFlavor.none)
}

extension ByteBuffer {
    public mutating func readRPCOpaqueAuth() throws -> RPCOpaqueAuth {
        let flavor = try self.readXDRUInt32()
        let body = try self.readXDRVariableOpaque(limit: RPCLimits.maxAuthBody)
        return RPCOpaqueAuth(flavor: flavor, body: body)
    }

    @discardableResult
    public mutating func writeRPCOpaqueAuth(_ auth: RPCOpaqueAuth) -> Int {
        self.writeXDRUInt32(auth.flavor) + self.writeXDRVariableOpaque(auth.body)
    }
}

/// The header of a call; the procedure's arguments follow in `arguments`, a slice of the record.
public struct RPCCall: Sendable {
    public var xid: UInt32
    public var program: UInt32
    public var version: UInt32
    public var procedure: UInt32
    public var credential: RPCOpaqueAuth
    public var verifier: RPCOpaqueAuth
    public var arguments: ByteBuffer

    public init(xid: UInt32, program: UInt32, version: UInt32, procedure: UInt32,
                credential: RPCOpaqueAuth = .none, verifier: RPCOpaqueAuth = .none,
                arguments: ByteBuffer = ByteBuffer()) {
        self.xid = xid
        self.program = program
        self.version = version
        self.procedure = procedure
        self.credential = credential
        self.verifier = verifier
        self.arguments = arguments
    }
}

/// What the front of a record turned out to be. A call whose header is unreadable cannot be
/// answered (we would not know the xid reliably), so the caller drops it and logs.
public enum RPCIncoming: Sendable {
    /// A well-formed call header.
    case call(RPCCall)
    /// A call with an rpcvers we do not speak: answer RPC_MISMATCH (RFC 5531 §9).
    case wrongRPCVersion(xid: UInt32)
    /// A reply (we act as a client on some sockets).
    case reply(xid: UInt32, body: ByteBuffer)
}

extension ByteBuffer {
    /// Parses the RPC header of one complete record.
    public mutating func readRPCMessage() throws -> RPCIncoming {
        let xid = try self.readXDRUInt32()
        switch try self.readXDREnum(RPCMessageType.self) {
        case .reply:
            return .reply(xid: xid, body: self)
        case .call:
            let rpcvers = try self.readXDRUInt32()
            guard rpcvers == rpcVersion else { return .wrongRPCVersion(xid: xid) }
            let prog = try self.readXDRUInt32()
            let vers = try self.readXDRUInt32()
            let proc = try self.readXDRUInt32()
            let cred = try self.readRPCOpaqueAuth()
            let verf = try self.readRPCOpaqueAuth()
            return .call(RPCCall(xid: xid, program: prog, version: vers, procedure: proc,
                                 credential: cred, verifier: verf, arguments: self))
        }
    }

    /// Writes a call header; the caller appends the arguments.
    @discardableResult
    public mutating func writeRPCCallHeader(_ call: RPCCall) -> Int {
        self.writeXDRUInt32(call.xid)
            + self.writeXDREnum(RPCMessageType.call)
            + self.writeXDRUInt32(rpcVersion)
            + self.writeXDRUInt32(call.program)
            + self.writeXDRUInt32(call.version)
            + self.writeXDRUInt32(call.procedure)
            + self.writeRPCOpaqueAuth(call.credential)
            + self.writeRPCOpaqueAuth(call.verifier)
    }
}
