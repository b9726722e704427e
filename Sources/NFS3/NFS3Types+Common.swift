import NIOCore
import XDR

// RFC 1813 §2.5 and §2.6: the basic data types shared by the procedures.

/// RFC 1813 §2.6 nfsstat3.
public enum NFS3Status: UInt32, Sendable, Hashable, Error {
    case ok = 0
    case perm = 1
    case noent = 2
    case io = 5
    case nxio = 6
    case acces = 13
    case exist = 17
    case xdev = 18
    case nodev = 19
    case notdir = 20
    case isdir = 21
    case inval = 22
    case fbig = 27
    case nospc = 28
    case rofs = 30
    case mlink = 31
    case nametoolong = 63
    case notempty = 66
    case dquot = 69
    case stale = 70
    case remote = 71
    case badhandle = 10001
    case notSync = 10002
    case badCookie = 10003
    case notsupp = 10004
    case toosmall = 10005
    case serverfault = 10006
    case badtype = 10007
    case jukebox = 10008
}

extension NFS3Status {
    /// The RFC 1813 name: NFS3ERR_NOENT, ...
    public var name: String {
        switch self {
        case .ok: return "NFS3_OK"
        case .notSync: return "NFS3ERR_NOT_SYNC"
        case .badCookie: return "NFS3ERR_BAD_COOKIE"
        default: return "NFS3ERR_" + "\(self)".uppercased()
        }
    }
}

/// A procedure's result: the OK arm or the failure arm with its status (RFC 1813 result unions).
public enum NFS3Result<Okay: Sendable, Fail: Sendable>: Sendable {
    case okay(Okay)
    case fail(NFS3Status, Fail)
}

/// RFC 1813 §2.5 nfs_fh3: opaque data<NFS3_FHSIZE>.
public struct NFS3FileHandle: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// RFC 1813 §2.5 ftype3.
public enum NFS3FileType: UInt32, Sendable, Hashable {
    case regular = 1
    case directory = 2
    case blockDevice = 3
    case characterDevice = 4
    case link = 5
    case socket = 6
    case fifo = 7
}

/// RFC 1813 §2.5 specdata3.
public struct NFS3SpecData: Hashable, Sendable {
    public var major: UInt32
    public var minor: UInt32
    public init(major: UInt32 = 0, minor: UInt32 = 0) { self.major = major; self.minor = minor }
}

/// RFC 1813 §2.5 nfstime3.
public struct NFS3Time: Hashable, Sendable {
    public var seconds: UInt32
    public var nanoseconds: UInt32
    public init(seconds: UInt32, nanoseconds: UInt32) { self.seconds = seconds; self.nanoseconds = nanoseconds }
}

/// RFC 1813 §2.5 fattr3.
public struct NFS3FileAttributes: Hashable, Sendable {
    public var type: NFS3FileType
    public var mode: UInt32
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var used: UInt64
    public var rdev: NFS3SpecData
    public var fsid: UInt64
    public var fileid: UInt64
    public var atime: NFS3Time
    public var mtime: NFS3Time
    public var ctime: NFS3Time

    public init(type: NFS3FileType, mode: UInt32, nlink: UInt32, uid: UInt32, gid: UInt32, size: UInt64,
                used: UInt64, rdev: NFS3SpecData, fsid: UInt64, fileid: UInt64,
                atime: NFS3Time, mtime: NFS3Time, ctime: NFS3Time) {
        self.type = type; self.mode = mode; self.nlink = nlink; self.uid = uid; self.gid = gid
        self.size = size; self.used = used; self.rdev = rdev; self.fsid = fsid; self.fileid = fileid
        self.atime = atime; self.mtime = mtime; self.ctime = ctime
    }
}

/// RFC 1813 §2.6 wcc_attr.
public struct NFS3WCCAttributes: Hashable, Sendable {
    public var size: UInt64
    public var mtime: NFS3Time
    public var ctime: NFS3Time
    public init(size: UInt64, mtime: NFS3Time, ctime: NFS3Time) { self.size = size; self.mtime = mtime; self.ctime = ctime }
}

/// RFC 1813 §2.6 wcc_data: pre_op_attr before; post_op_attr after.
public struct NFS3WCCData: Hashable, Sendable {
    public var before: NFS3WCCAttributes?
    public var after: NFS3FileAttributes?
    public init(before: NFS3WCCAttributes? = nil, after: NFS3FileAttributes? = nil) { self.before = before; self.after = after }
}

/// RFC 1813 §2.6 time_how with set_atime/set_mtime.
public enum NFS3SetTime: Hashable, Sendable {
    case dontChange
    case serverTime
    case clientTime(NFS3Time)
}

/// RFC 1813 §2.6 sattr3.
public struct NFS3SetAttributes: Hashable, Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var atime: NFS3SetTime
    public var mtime: NFS3SetTime
    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: UInt64? = nil,
                atime: NFS3SetTime = .dontChange, mtime: NFS3SetTime = .dontChange) {
        self.mode = mode; self.uid = uid; self.gid = gid; self.size = size; self.atime = atime; self.mtime = mtime
    }
}

/// RFC 1813 §2.6 diropargs3. The name is kept as raw bytes: file names are bytes, not text.
public struct NFS3DirOpArgs: Hashable, Sendable {
    public var directory: NFS3FileHandle
    public var name: [UInt8]
    public init(directory: NFS3FileHandle, name: [UInt8]) { self.directory = directory; self.name = name }
}

/// RFC 1813 §3.3.7 stable_how.
public enum NFS3StableHow: UInt32, Sendable, Hashable {
    case unstable = 0
    case dataSync = 1
    case fileSync = 2
}

/// An 8-byte verifier (cookieverf3, createverf3, writeverf3).
public struct NFS3Verifier: Hashable, Sendable {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public static let zero = NFS3Verifier(0)
}

// MARK: - Codecs

extension ByteBuffer {
    public mutating func readNFS3Status() throws -> NFS3Status { try readXDREnum(NFS3Status.self) }
    @discardableResult
    public mutating func writeNFS3Status(_ s: NFS3Status) -> Int { writeXDREnum(s) }

    public mutating func readNFS3FileHandle() throws -> NFS3FileHandle {
        let slice = try readXDRVariableOpaque(limit: NFS3.maxFileHandleSize)
        return NFS3FileHandle(Array(slice.readableBytesView))
    }

    @discardableResult
    public mutating func writeNFS3FileHandle(_ fh: NFS3FileHandle) -> Int {
        writeXDRVariableOpaque(bytes: fh.bytes)
    }

    /// filename3: a name, kept as bytes.
    public mutating func readNFS3Name() throws -> [UInt8] {
        let slice = try readXDRVariableOpaque(limit: NFS3.maxNameLength)
        return Array(slice.readableBytesView)
    }

    @discardableResult
    public mutating func writeNFS3Name(_ name: [UInt8]) -> Int { writeXDRVariableOpaque(bytes: name) }

    /// nfspath3.
    public mutating func readNFS3Path() throws -> [UInt8] {
        let slice = try readXDRVariableOpaque(limit: NFS3.maxPathLength)
        return Array(slice.readableBytesView)
    }

    @discardableResult
    public mutating func writeNFS3Path(_ path: [UInt8]) -> Int { writeXDRVariableOpaque(bytes: path) }

    public mutating func readNFS3Verifier() throws -> NFS3Verifier { NFS3Verifier(try readXDRUInt64()) }
    @discardableResult
    public mutating func writeNFS3Verifier(_ v: NFS3Verifier) -> Int { writeXDRUInt64(v.value) }

    public mutating func readNFS3Time() throws -> NFS3Time {
        NFS3Time(seconds: try readXDRUInt32(), nanoseconds: try readXDRUInt32())
    }

    @discardableResult
    public mutating func writeNFS3Time(_ t: NFS3Time) -> Int { writeXDRUInt32(t.seconds) + writeXDRUInt32(t.nanoseconds) }

    public mutating func readNFS3FileAttributes() throws -> NFS3FileAttributes {
        let type = try readXDREnum(NFS3FileType.self)
        let mode = try readXDRUInt32(), nlink = try readXDRUInt32(), uid = try readXDRUInt32(), gid = try readXDRUInt32()
        let size = try readXDRUInt64(), used = try readXDRUInt64()
        let rdev = NFS3SpecData(major: try readXDRUInt32(), minor: try readXDRUInt32())
        let fsid = try readXDRUInt64(), fileid = try readXDRUInt64()
        let atime = try readNFS3Time(), mtime = try readNFS3Time(), ctime = try readNFS3Time()
        return NFS3FileAttributes(type: type, mode: mode, nlink: nlink, uid: uid, gid: gid, size: size, used: used,
                                  rdev: rdev, fsid: fsid, fileid: fileid, atime: atime, mtime: mtime, ctime: ctime)
    }

    @discardableResult
    /// fattr3 is in nearly every reply, once per entry in READDIRPLUS: its 21 words are stored
    /// into one reservation, not written one by one (each write checks the buffer again).
    public mutating func writeNFS3FileAttributes(_ a: NFS3FileAttributes) -> Int {
        writeWithUnsafeMutableBytes(minimumWritableBytes: NFS3FileAttributes.encodedSize) { p in
            var at = 0
            Self.store(a.type.rawValue, p, &at)
            Self.store(a.mode, p, &at)
            Self.store(a.nlink, p, &at)
            Self.store(a.uid, p, &at)
            Self.store(a.gid, p, &at)
            Self.store(a.size, p, &at)
            Self.store(a.used, p, &at)
            Self.store(a.rdev.major, p, &at)
            Self.store(a.rdev.minor, p, &at)
            Self.store(a.fsid, p, &at)
            Self.store(a.fileid, p, &at)
            Self.store(a.atime, p, &at)
            Self.store(a.mtime, p, &at)
            Self.store(a.ctime, p, &at)
            return at
        }
    }

    @inline(__always)
    static func store<Word: FixedWidthInteger>(_ v: Word, _ p: UnsafeMutableRawBufferPointer, _ at: inout Int) {
        p.storeBytes(of: v.bigEndian, toByteOffset: at, as: Word.self)
        at += MemoryLayout<Word>.size
    }

    @inline(__always)
    static func store(_ t: NFS3Time, _ p: UnsafeMutableRawBufferPointer, _ at: inout Int) {
        store(t.seconds, p, &at)
        store(t.nanoseconds, p, &at)
    }

    /// post_op_attr.
    public mutating func readNFS3PostOpAttributes() throws -> NFS3FileAttributes? {
        try readXDROptional { try $0.readNFS3FileAttributes() }
    }

    @discardableResult
    public mutating func writeNFS3PostOpAttributes(_ a: NFS3FileAttributes?) -> Int {
        writeXDROptional(a) { $0.writeNFS3FileAttributes($1) }
    }

    /// post_op_fh3.
    public mutating func readNFS3PostOpFileHandle() throws -> NFS3FileHandle? {
        try readXDROptional { try $0.readNFS3FileHandle() }
    }

    @discardableResult
    public mutating func writeNFS3PostOpFileHandle(_ fh: NFS3FileHandle?) -> Int {
        writeXDROptional(fh) { $0.writeNFS3FileHandle($1) }
    }

    public mutating func readNFS3WCCData() throws -> NFS3WCCData {
        let before = try readXDROptional {
            NFS3WCCAttributes(size: try $0.readXDRUInt64(), mtime: try $0.readNFS3Time(), ctime: try $0.readNFS3Time())
        }
        return NFS3WCCData(before: before, after: try readNFS3PostOpAttributes())
    }

    @discardableResult
    public mutating func writeNFS3WCCData(_ w: NFS3WCCData) -> Int {
        writeXDROptional(w.before) { b, a in
            b.writeXDRUInt64(a.size) + b.writeNFS3Time(a.mtime) + b.writeNFS3Time(a.ctime)
        } + writeNFS3PostOpAttributes(w.after)
    }

    public mutating func readNFS3SetAttributes() throws -> NFS3SetAttributes {
        var s = NFS3SetAttributes()
        s.mode = try readXDROptional { try $0.readXDRUInt32() }
        s.uid = try readXDROptional { try $0.readXDRUInt32() }
        s.gid = try readXDROptional { try $0.readXDRUInt32() }
        s.size = try readXDROptional { try $0.readXDRUInt64() }
        s.atime = try readNFS3SetTime()
        s.mtime = try readNFS3SetTime()
        return s
    }

    @discardableResult
    public mutating func writeNFS3SetAttributes(_ s: NFS3SetAttributes) -> Int {
        writeXDROptional(s.mode) { $0.writeXDRUInt32($1) } + writeXDROptional(s.uid) { $0.writeXDRUInt32($1) }
            + writeXDROptional(s.gid) { $0.writeXDRUInt32($1) } + writeXDROptional(s.size) { $0.writeXDRUInt64($1) }
            + writeNFS3SetTime(s.atime) + writeNFS3SetTime(s.mtime)
    }

    mutating func readNFS3SetTime() throws -> NFS3SetTime {
        switch try readXDRUInt32() {
        case 0: return .dontChange
        case 1: return .serverTime
        case 2: return .clientTime(try readNFS3Time())
        case let v: throw XDRError(.invalidEnum, "time_how \(v)")
        }
    }

    @discardableResult
    mutating func writeNFS3SetTime(_ t: NFS3SetTime) -> Int {
        switch t {
        case .dontChange: return writeXDRUInt32(0)
        case .serverTime: return writeXDRUInt32(1)
        case .clientTime(let time): return writeXDRUInt32(2) + writeNFS3Time(time)
        }
    }

    public mutating func readNFS3DirOpArgs() throws -> NFS3DirOpArgs {
        NFS3DirOpArgs(directory: try readNFS3FileHandle(), name: try readNFS3Name())
    }

    @discardableResult
    public mutating func writeNFS3DirOpArgs(_ d: NFS3DirOpArgs) -> Int {
        writeNFS3FileHandle(d.directory) + writeNFS3Name(d.name)
    }

    /// Writes the result union: status, then the arm that goes with it.
    @discardableResult
    public mutating func writeNFS3Result<O, F>(_ r: NFS3Result<O, F>, okay: (inout ByteBuffer, O) -> Int,
                                               fail: (inout ByteBuffer, F) -> Int) -> Int {
        switch r {
        case .okay(let o): return writeNFS3Status(.ok) + okay(&self, o)
        case .fail(let s, let f): return writeNFS3Status(s) + fail(&self, f)
        }
    }

    public mutating func readNFS3Result<O, F>(okay: (inout ByteBuffer) throws -> O,
                                              fail: (inout ByteBuffer) throws -> F) throws -> NFS3Result<O, F> {
        let s = try readNFS3Status()
        return s == .ok ? .okay(try okay(&self)) : .fail(s, try fail(&self))
    }
}
