// Program and procedure numbers and the limits of NFS version 3 (RFC 1813).

public enum NFS3 {
    /// RFC 1813 §1.3: program 100003, version 3.
    public static let program: UInt32 = 100_003
    public static let version: UInt32 = 3

    /// RFC 1813 §2.2: NFS3_FHSIZE, the largest file handle.
    public static let maxFileHandleSize = 64
    /// RFC 1813 §2.2: NFS3_COOKIEVERFSIZE, NFS3_CREATEVERFSIZE, NFS3_WRITEVERFSIZE.
    public static let verifierSize = 8
    /// filename3 and nfspath3 are unbounded strings in the RFC; we bound them at the Linux
    /// limits (NAME_MAX 255 and PATH_MAX 4096) before reading.
    public static let maxNameLength = 255
    public static let maxPathLength = 4096
    /// Largest WRITE payload we accept: the wtmax we advertise on TCP (1 MiB, like knfsd).
    public static let maxWriteSize = 1 << 20
    /// Advertised transfer sizes over UDP, which must fit a datagram with headers.
    public static let maxUDPTransferSize = 32 * 1024
}

/// RFC 1813 §3: procedure numbers.
public enum NFS3Procedure: UInt32, Sendable, CaseIterable {
    case null = 0
    case getattr = 1
    case setattr = 2
    case lookup = 3
    case access = 4
    case readlink = 5
    case read = 6
    case write = 7
    case create = 8
    case mkdir = 9
    case symlink = 10
    case mknod = 11
    case remove = 12
    case rmdir = 13
    case rename = 14
    case link = 15
    case readdir = 16
    case readdirplus = 17
    case fsstat = 18
    case fsinfo = 19
    case pathconf = 20
    case commit = 21
}

extension NFS3Procedure {
    /// The RFC 1813 name: GETATTR, READDIRPLUS, ...
    public var name: String { "\(self)".uppercased() }

    /// Bytes of the failure arm of this procedure's result when every optional part of it is
    /// absent (post_op_attr and pre_op_attr false). With the status in front, that is a valid
    /// failure reply of any procedure, for refusals made before the procedure runs.
    public var emptyFailureArmSize: Int {
        switch self {
        case .null, .getattr: return 0
        case .lookup, .access, .readlink, .read, .readdir, .readdirplus, .fsstat, .fsinfo, .pathconf: return 4
        case .setattr, .write, .create, .mkdir, .symlink, .mknod, .remove, .rmdir, .commit: return 8
        case .link: return 12
        case .rename: return 16
        }
    }
}
