import Mount
import NFS3

/// Why a call of `NFS3Client` failed: the server's status, the RPC call,
/// or the reply. Its description reads "PROCEDURE: code: detail", e.g.
/// "WRITE: status: NFS3ERR_FBIG".
public struct NFS3ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Extensible within the package: the benchmark adds codes for replies its checks refuse.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        package init(name: String) { self.name = name }

        /// The server answered with an nfsstat3 other than NFS3_OK (or a mountstat3 other than MNT3_OK).
        public static let status = Code(name: "status")
        /// The RPC call failed: rejected, timed out, or the connection closed.
        public static let rpc = Code(name: "rpc")
        /// The reply did not decode, or had bytes after the results.
        public static let malformedReply = Code(name: "malformed reply")
        /// The client could not find the server (the portmapper did not answer, or does not
        /// know the program).
        public static let setup = Code(name: "setup")
    }

    public var code: Code
    /// The procedure involved (GETATTR, MNT, ...), when there is one.
    public var procedure: String?
    public var detail: String
    /// Whether the connection is unusable afterwards (closed by the server or the network).
    public var isFatal: Bool
    /// The nfsstat3 of a `.status` failure of an NFS procedure.
    public var status: NFS3Status?
    /// The mountstat3 of a `.status` failure of MNT.
    public var mountStatus: MountStatus?

    public init(_ code: Code, procedure: String? = nil, _ detail: String, isFatal: Bool = false) {
        self.code = code
        self.procedure = procedure
        self.detail = detail
        self.isFatal = isFatal
    }

    /// An NFS procedure's failure status; the detail is the status's RFC name.
    public static func status(_ status: NFS3Status, _ procedure: NFS3Procedure) -> NFS3ClientError {
        var error = NFS3ClientError(.status, procedure: procedure.name, status.name)
        error.status = status
        return error
    }

    public var description: String {
        "\(procedure.map { $0 + ": " } ?? "")\(code): \(detail)"
    }
}
