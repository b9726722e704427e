import Glibc

/// The one error type of the file store: what went wrong, in terms a protocol layer can map to
/// its own status codes (errno -> StoreError here; StoreError -> nfsstat3 in NFS3Server).
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public static let notFound = Code(name: "notFound")
        public static let exists = Code(name: "exists")
        public static let notDirectory = Code(name: "notDirectory")
        public static let isDirectory = Code(name: "isDirectory")
        public static let notEmpty = Code(name: "notEmpty")
        public static let accessDenied = Code(name: "accessDenied")
        public static let notPermitted = Code(name: "notPermitted")
        public static let readOnly = Code(name: "readOnly")
        public static let noSpace = Code(name: "noSpace")
        public static let quota = Code(name: "quota")
        public static let nameTooLong = Code(name: "nameTooLong")
        public static let tooManyLinks = Code(name: "tooManyLinks")
        public static let fileTooBig = Code(name: "fileTooBig")
        public static let crossDevice = Code(name: "crossDevice")
        public static let invalid = Code(name: "invalid")
        public static let notSupported = Code(name: "notSupported")
        /// The handle names a file that no longer exists (or that we can no longer find).
        public static let stale = Code(name: "stale")
        /// The handle is not one of ours at all.
        public static let badHandle = Code(name: "badHandle")
        /// An object of a type the operation cannot create.
        public static let badType = Code(name: "badType")
        /// A symlink where the operation needs a file or directory.
        public static let symlink = Code(name: "symlink")
        public static let io = Code(name: "io")
        public var description: String { name }
    }

    public var code: Code
    public var errno: Int32
    public var operation: String

    public init(_ code: Code, errno: Int32 = 0, operation: String = "") {
        self.code = code
        self.errno = errno
        self.operation = operation
    }

    /// The errno -> StoreError table.
    public init(errno e: Int32, operation: String) {
        let code: Code
        switch e {
        case ENOENT: code = .notFound
        case EEXIST: code = .exists
        case ENOTDIR: code = .notDirectory
        case EISDIR: code = .isDirectory
        case ENOTEMPTY: code = .notEmpty
        case EACCES: code = .accessDenied
        case EPERM: code = .notPermitted
        case EROFS: code = .readOnly
        case ENOSPC: code = .noSpace
        case EDQUOT: code = .quota
        case ENAMETOOLONG: code = .nameTooLong
        case EMLINK: code = .tooManyLinks
        case EFBIG: code = .fileTooBig
        case EXDEV: code = .crossDevice
        case EINVAL: code = .invalid
        case ELOOP: code = .symlink
        case EOPNOTSUPP, ENOSYS: code = .notSupported
        case ESTALE: code = .stale
        default: code = .io
        }
        self.init(code, errno: e, operation: operation)
    }

    public var description: String {
        "\(operation.isEmpty ? "" : operation + ": ")\(code)\(errno != 0 ? " (errno \(errno))" : "")"
    }
}

/// Calls a system call that returns -1 on error, retrying on EINTR.
@inline(__always)
func sys<T: SignedInteger>(_ operation: @autoclosure () -> String, _ body: () -> T) throws -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw StoreError(errno: e, operation: operation())
    }
}
