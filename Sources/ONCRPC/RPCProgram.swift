import NIOCore
import XDR

public enum RPCTransportProtocol: String, Hashable, Sendable {
    case tcp
    case udp
}

/// What a procedure needs to know about the call besides its arguments.
public struct RPCCallContext: Sendable {
    public var remoteAddress: SocketAddress?
    public var localAddress: SocketAddress?
    public var transport: RPCTransportProtocol
    public var credentials: RPCCredentials

    public init(remoteAddress: SocketAddress?, localAddress: SocketAddress?,
                transport: RPCTransportProtocol, credentials: RPCCredentials) {
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.transport = transport
        self.credentials = credentials
    }
}

/// How the dispatcher and transports treat a procedure.
public struct RPCProcedureTraits: Hashable, Sendable {
    /// Non-idempotent procedures go through the duplicate request cache.
    public var isIdempotent: Bool
    /// Blocking procedures (file-system calls) run on the thread pool, never on an event loop.
    public var isBlocking: Bool
    /// Procedures that may wait a long time for storage (a change held back while the journal
    /// makes room, a COMMIT waiting for an fsync) run on a pool of their own, so that however
    /// many of them wait, the calls that only read are still answered.
    public var mayWaitForStorage: Bool

    /// A non-idempotent procedure whose reply is recorded with the change it reports, where
    /// a server keeps its changes (`RPCServerCore.replyRecorder`), so that a retransmission
    /// after a takeover or a restart is answered, not executed again. Not for a change that
    /// is harmless to make twice and whose reply must not outlive the process (an NFS WRITE:
    /// its reply carries the write verifier of the process that answered).
    public var recordsReply: Bool

    public init(isIdempotent: Bool, isBlocking: Bool, mayWaitForStorage: Bool = false, recordsReply: Bool = false) {
        self.isIdempotent = isIdempotent
        self.isBlocking = isBlocking
        self.mayWaitForStorage = mayWaitForStorage
        self.recordsReply = recordsReply
    }

    public static let inline = RPCProcedureTraits(isIdempotent: true, isBlocking: false)
    public static let read = RPCProcedureTraits(isIdempotent: true, isBlocking: true)
    public static let modify = RPCProcedureTraits(isIdempotent: false, isBlocking: true, mayWaitForStorage: true)
    /// `modify`, and the reply is recorded with the change (`recordsReply`).
    public static let recordedChange = RPCProcedureTraits(isIdempotent: false, isBlocking: true, mayWaitForStorage: true,
                                                          recordsReply: true)
    /// Idempotent, but waits for storage (COMMIT).
    public static let sync = RPCProcedureTraits(isIdempotent: true, isBlocking: true, mayWaitForStorage: true)
}

/// A procedure's answer: either results (written into the buffer the dispatcher handed it,
/// optionally followed by a bulk payload that is sent without being copied), or an RPC-level
/// failure. Protocol-level statuses such as nfsstat3 are results, not failures.
public enum RPCProcedureOutcome: Sendable {
    case success(payload: ByteBuffer?)
    /// Results that may be sent only once `hold` releases them (a change reported as done is
    /// on stable storage): the transport sends them then, or what the hold gives instead.
    case held(payload: ByteBuffer?, hold: any RPCReplyHold)
    case failure(RPCReplyStatus)

    public static let success = RPCProcedureOutcome.success(payload: nil)
}

/// What a reply waits for before it may be sent (see `RPCProcedureOutcome.held`).
public protocol RPCReplyHold: Sendable {
    /// Calls `release` exactly once, from any thread: with nil when the results may go as they
    /// are, or with the results to send in their place (the promise could not be kept).
    func whenReleased(allocator: ByteBufferAllocator, _ release: @escaping @Sendable (ByteBuffer?) -> Void)
}

/// One RPC program (all of its supported versions).
public protocol RPCProgram: Sendable {
    var program: UInt32 { get }
    /// The lowest and highest versions (what PROG_MISMATCH tells).
    var versions: ClosedRange<UInt32> { get }
    /// Whether a version in between exists (NLM has 1, 3 and 4); by default all do.
    func supports(version: UInt32) -> Bool
    /// The traits of a procedure, or nil when the version has no such procedure (PROC_UNAVAIL).
    func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits?
    /// Decodes the arguments, runs the procedure, and appends its results to `results`.
    /// A thrown XDRError becomes GARBAGE_ARGS; any other error SYSTEM_ERR.
    func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome
    /// Answers a blocking procedure on the event loop when the answer needs no blocking work
    /// (it is one cheap system call away from what is in memory), saving the two thread hops
    /// to the pool and back; nil sends the call to the pool, where `handle` runs it.
    func handleWithoutBlocking(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome?
}

extension RPCProgram {
    public func supports(version: UInt32) -> Bool { versions.contains(version) }

    /// By default every blocking procedure runs on the pool.
    public func handleWithoutBlocking(_ call: RPCCall, context: RPCCallContext,
                                      results: inout ByteBuffer) throws -> RPCProcedureOutcome? {
        nil
    }
}
