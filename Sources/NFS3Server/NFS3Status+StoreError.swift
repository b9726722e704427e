import FileStore
import NFS3

extension NFS3Status {
    /// The one StoreError -> nfsstat3 table (RFC 1813 §2.6). Anything unexpected is
    /// NFS3ERR_SERVERFAULT, never silence.
    package init(_ error: any Error) {
        switch error {
        case let s as NFS3Status: self = s
        case let e as StoreError:
            switch e.code {
            case .notFound: self = .noent
            case .exists: self = .exist
            case .notDirectory: self = .notdir
            case .isDirectory: self = .isdir
            case .notEmpty: self = .notempty
            case .accessDenied: self = .acces
            case .notPermitted: self = .perm
            case .readOnly: self = .rofs
            case .noSpace: self = .nospc
            case .quota: self = .dquot
            case .nameTooLong: self = .nametoolong
            case .tooManyLinks: self = .mlink
            case .fileTooBig: self = .fbig
            case .crossDevice: self = .xdev
            case .invalid, .symlink: self = .inval
            case .notSupported: self = .notsupp
            case .stale: self = .stale
            case .badHandle: self = .badhandle
            case .badType: self = .badtype
            default: self = .io
            }
        default: self = .serverfault
        }
    }
}
