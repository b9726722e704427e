import NFS3Client

/// Why one benchmark operation, or the set-up around it, failed: a failure of the NFS client,
/// or a reply that decoded but that the benchmark's checks refuse. Every failed operation is
/// counted under `tallyKey`, so a run reports what went wrong and how often.
package struct BenchError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The client's codes (`.setup` also covers workloads the server cannot run as asked), and
    /// the benchmark's own below.
    package typealias Code = NFS3ClientError.Code

    /// The failure in the client's terms: code, procedure, detail, and whether it is fatal.
    package var failure: NFS3ClientError

    package var code: Code { failure.code }
    /// The NFS procedure involved, when there is one.
    package var procedure: String? { failure.procedure }
    package var detail: String { failure.detail }
    /// Whether the connection is unusable afterwards (the worker stops instead of looping on it).
    package var isFatal: Bool { failure.isFatal }

    package init(_ code: Code, procedure: String? = nil, _ detail: String, isFatal: Bool = false) {
        failure = NFS3ClientError(code, procedure: procedure, detail, isFatal: isFatal)
    }

    /// A failure of the NFS client, counted like the benchmark's own.
    package init(_ failure: NFS3ClientError) {
        self.failure = failure
    }

    /// `error` as the runner counts it, when it is the benchmark's or the client's.
    init?(counting error: any Error) {
        switch error {
        case let e as BenchError: self = e
        case let e as NFS3ClientError: self.init(e)
        default: return nil
        }
    }

    package var description: String { failure.description }

    /// The key failures are counted under: procedure and code, plus the status name for NFS
    /// statuses (which are few), but never the free-form detail (which would split the tally).
    package var tallyKey: String {
        let head = procedure.map { $0 + " " } ?? ""
        return code == .status || code == .rpc ? head + detail : head + code.description
    }
}

extension NFS3ClientError.Code {
    /// A count in the reply is not the one asked for (bytes read or written, entries listed).
    package static let countMismatch = Self(name: "count mismatch")
    /// READ data differs from the pattern that was written.
    package static let dataMismatch = Self(name: "data mismatch")
    /// Something else in the reply contradicts the call (a verifier, a missing handle, eof).
    package static let unexpectedReply = Self(name: "unexpected reply")
}
