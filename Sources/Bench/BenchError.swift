import NFS3

/// Why one benchmark operation, or the set-up around it, failed. Every failed operation is
/// counted under `tallyKey`, so a run reports what went wrong and how often.
public struct BenchError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The server answered with an nfsstat3 other than NFS3_OK (or a mountstat3 other than MNT3_OK).
        public static let status = Code(name: "status")
        /// The RPC call failed: rejected, timed out, or the connection closed.
        public static let rpc = Code(name: "rpc")
        /// The reply did not decode, or had bytes after the results.
        public static let malformedReply = Code(name: "malformed reply")
        /// A count in the reply is not the one asked for (bytes read or written, entries listed).
        public static let countMismatch = Code(name: "count mismatch")
        /// READ data differs from the pattern that was written.
        public static let dataMismatch = Code(name: "data mismatch")
        /// Something else in the reply contradicts the call (a verifier, a missing handle, eof).
        public static let unexpectedReply = Code(name: "unexpected reply")
        /// The server cannot run the workload as asked (transfer size too small, no ports).
        public static let setup = Code(name: "setup")
    }

    public var code: Code
    /// The NFS procedure involved, when there is one.
    public var procedure: String?
    public var detail: String
    /// Whether the connection is unusable afterwards (the worker stops instead of looping on it).
    public var isFatal: Bool

    public init(_ code: Code, procedure: String? = nil, _ detail: String, isFatal: Bool = false) {
        self.code = code
        self.procedure = procedure
        self.detail = detail
        self.isFatal = isFatal
    }

    public static func status(_ status: NFS3Status, _ procedure: NFS3Procedure) -> BenchError {
        BenchError(.status, procedure: procedure.name, status.name)
    }

    public var description: String {
        "\(procedure.map { $0 + ": " } ?? "")\(code): \(detail)"
    }

    /// The key failures are counted under: procedure and code, plus the status name for NFS
    /// statuses (which are few), but never the free-form detail (which would split the tally).
    public var tallyKey: String {
        let head = procedure.map { $0 + " " } ?? ""
        return code == .status || code == .rpc ? head + detail : head + code.name
    }
}
