import NIOCore
import XDR

// RFC 1813 appendix I (MOUNT version 3) and RFC 1094 appendix A (version 1):
//   const MNTPATHLEN = 1024; const MNTNAMLEN = 255; const FHSIZE3 = 64; const FHSIZE = 32;
//   typedef string dirpath<MNTPATHLEN>; typedef string name<MNTNAMLEN>;
//   struct mountres3_ok { fhandle3 fhandle; int auth_flavors<>; };
//   union mountres3 switch (mountstat3 fhs_status) { case MNT3_OK: mountres3_ok mountinfo; default: void; };
//   union fhstatus switch (unsigned fhs_status) { case 0: fhandle fhs_fhandle; default: void; };   (v1)
//   struct mountbody { name ml_hostname; dirpath ml_directory; mountlist ml_next; };
//   struct groupnode { name gr_name; groups gr_next; };
//   struct exportnode { dirpath ex_dir; groups ex_groups; exports ex_next; };

public enum Mount {
    public static let program: UInt32 = 100_005
    public static let versions: ClosedRange<UInt32> = 1...3
    public static let maxPathLength = 1024
    public static let maxNameLength = 255
    public static let maxFileHandleSize = 64
    /// MOUNT v1 handles are a fixed 32 bytes (RFC 1094 FHSIZE).
    public static let version1HandleSize = 32
    /// The mount and export lists (and an export's groups) are unbounded linked lists in the
    /// RFC; a reader stops at this many entries.
    public static let maxListLength = 65_536
}

public enum MountProcedure {
    public static let null: UInt32 = 0
    public static let mnt: UInt32 = 1
    public static let dump: UInt32 = 2
    public static let umnt: UInt32 = 3
    public static let umntall: UInt32 = 4
    public static let export: UInt32 = 5
}

/// RFC 1813 appendix I mountstat3.
public enum MountStatus: UInt32, Sendable, Hashable, Error {
    case ok = 0
    case perm = 1
    case noent = 2
    case io = 5
    case acces = 13
    case notdir = 20
    case inval = 22
    case nametoolong = 63
    case notsupp = 10004
    case serverfault = 10006
}

public struct MountEntry: Hashable, Sendable {
    public var hostname: String
    public var directory: String
    public init(hostname: String, directory: String) { self.hostname = hostname; self.directory = directory }
}

public struct ExportEntry: Hashable, Sendable {
    public var directory: String
    public var groups: [String]
    public init(directory: String, groups: [String]) { self.directory = directory; self.groups = groups }
}

public struct MountOkay: Hashable, Sendable {
    public var fileHandle: [UInt8]
    public var authFlavors: [UInt32]
    public init(fileHandle: [UInt8], authFlavors: [UInt32]) { self.fileHandle = fileHandle; self.authFlavors = authFlavors }
}

extension ByteBuffer {
    public mutating func readMountPath() throws -> String { try readXDRString(limit: Mount.maxPathLength) }

    @discardableResult
    public mutating func writeMountResult3(_ r: Result<MountOkay, MountStatus>) -> Int {
        switch r {
        case .success(let ok):
            return writeXDREnum(MountStatus.ok) + writeXDRVariableOpaque(bytes: ok.fileHandle)
                + writeXDRArray(ok.authFlavors) { $0.writeXDRUInt32($1) }
        case .failure(let status):
            return writeXDREnum(status)
        }
    }

    public mutating func readMountResult3() throws -> Result<MountOkay, MountStatus> {
        let status = try readXDREnum(MountStatus.self)
        guard status == .ok else { return .failure(status) }
        let fh = try readXDRVariableOpaque(limit: Mount.maxFileHandleSize)
        let flavors = try readXDRArray(limit: 64) { try $0.readXDRUInt32() }
        return .success(MountOkay(fileHandle: Array(fh.readableBytesView), authFlavors: flavors))
    }

    /// v1 fhstatus: the handle padded with zeros to 32 bytes.
    @discardableResult
    public mutating func writeMountResult1(_ r: Result<MountOkay, MountStatus>) -> Int {
        switch r {
        case .success(let ok) where ok.fileHandle.count <= Mount.version1HandleSize:
            let padded = ok.fileHandle + [UInt8](repeating: 0, count: Mount.version1HandleSize - ok.fileHandle.count)
            return writeXDRUInt32(0) + writeBytes(padded)
        case .success:
            return writeXDREnum(MountStatus.notsupp)
        case .failure(let status):
            return writeXDREnum(status)
        }
    }

    @discardableResult
    public mutating func writeMountList(_ entries: [MountEntry]) -> Int {
        var n = 0
        for e in entries { n += writeXDRBool(true) + writeXDRString(e.hostname) + writeXDRString(e.directory) }
        return n + writeXDRBool(false)
    }

    public mutating func readMountList() throws -> [MountEntry] {
        var out: [MountEntry] = []
        while try readXDRBool() {
            guard out.count < Mount.maxListLength else { throw XDRError(.lengthExceedsLimit, "mounts") }
            let hostname = try readXDRString(limit: Mount.maxNameLength)
            out.append(MountEntry(hostname: hostname, directory: try readMountPath()))
        }
        return out
    }

    @discardableResult
    public mutating func writeExportList(_ entries: [ExportEntry]) -> Int {
        var n = 0
        for e in entries {
            n += writeXDRBool(true) + writeXDRString(e.directory)
            for g in e.groups { n += writeXDRBool(true) + writeXDRString(g) }
            n += writeXDRBool(false)
        }
        return n + writeXDRBool(false)
    }

    public mutating func readExportList() throws -> [ExportEntry] {
        var out: [ExportEntry] = []
        while try readXDRBool() {
            guard out.count < Mount.maxListLength else { throw XDRError(.lengthExceedsLimit, "exports") }
            let dir = try readMountPath()
            var groups: [String] = []
            while try readXDRBool() {
                guard groups.count < Mount.maxListLength else { throw XDRError(.lengthExceedsLimit, "groups") }
                groups.append(try readXDRString(limit: Mount.maxNameLength))
            }
            out.append(ExportEntry(directory: dir, groups: groups))
        }
        return out
    }
}
