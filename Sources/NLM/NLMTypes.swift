import NIOCore
import XDR

/// The Network Lock Manager's wire types (program 100021; Open Group XNFS for versions 1 and 3,
/// RFC 1813 appendix II for version 4), one Swift type for every version: offsets and lengths
/// are 64-bit here and 32-bit on the wire of versions 1 and 3.
package enum NLM {
    package static let program: UInt32 = 100_021
    /// LM_MAXSTRLEN: caller names.
    package static let maxString = 1024
    /// MAXNETOBJ_SZ: cookies, file handles, owner handles.
    package static let maxNetobj = 1024

    package enum Procedure: UInt32, Sendable {
        case null = 0, test = 1, lock = 2, cancel = 3, unlock = 4, granted = 5
        case testMessage = 6, lockMessage = 7, cancelMessage = 8, unlockMessage = 9, grantedMessage = 10
        case testResult = 11, lockResult = 12, cancelResult = 13, unlockResult = 14, grantedResult = 15
        case share = 20, unshare = 21, nmLock = 22, freeAll = 23
    }

    /// nlm_stats / nlm4_stats (versions 1 and 3 know the first five). An Error too: what
    /// refuses a request.
    package enum Status: UInt32, Sendable, Error {
        case granted = 0, denied = 1, deniedNoLocks = 2, blocked = 3, deniedGracePeriod = 4
        case deadlock = 5, readOnlyFileSystem = 6, staleFileHandle = 7, fileTooBig = 8, failed = 9
    }
}

/// nlm_lock / nlm4_lock: who asks for which bytes of which file.
package struct NLMLock: Hashable, Sendable {
    package var callerName: String
    package var fileHandle: [UInt8]
    package var ownerHandle: [UInt8]
    package var svid: Int32
    package var offset: UInt64
    package var length: UInt64

    package init(callerName: String, fileHandle: [UInt8], ownerHandle: [UInt8], svid: Int32, offset: UInt64, length: UInt64) {
        self.callerName = callerName
        self.fileHandle = fileHandle
        self.ownerHandle = ownerHandle
        self.svid = svid
        self.offset = offset
        self.length = length
    }
}

/// nlm_holder / nlm4_holder: the lock in the way of a TEST.
package struct NLMHolder: Hashable, Sendable {
    package var exclusive: Bool
    package var svid: Int32
    package var ownerHandle: [UInt8]
    package var offset: UInt64
    package var length: UInt64

    package init(exclusive: Bool, svid: Int32, ownerHandle: [UInt8], offset: UInt64, length: UInt64) {
        self.exclusive = exclusive
        self.svid = svid
        self.ownerHandle = ownerHandle
        self.offset = offset
        self.length = length
    }
}

/// The arguments of TEST, LOCK, CANCEL and UNLOCK (and their _MSG forms): what each carries
/// beyond the cookie and the lock (nlm4_testargs, nlm4_lockargs, nlm4_cancargs, nlm4_unlockargs).
package struct NLMLockArguments: Hashable, Sendable {
    package var cookie: [UInt8]
    /// LOCK and CANCEL.
    package var block = false
    /// TEST, LOCK and CANCEL.
    package var exclusive = false
    package var lock: NLMLock
    /// LOCK: a lock held before the server restarted, asked for again in the grace period.
    package var reclaim = false
    /// LOCK: the client's NSM state.
    package var state: Int32 = 0

    package init(cookie: [UInt8], block: Bool = false, exclusive: Bool = false, lock: NLMLock, reclaim: Bool = false, state: Int32 = 0) {
        self.cookie = cookie
        self.block = block
        self.exclusive = exclusive
        self.lock = lock
        self.reclaim = reclaim
        self.state = state
    }
}

extension ByteBuffer {
    /// Whether offsets and lengths are 64-bit (version 4) or 32-bit (versions 1 and 3).
    static func nlmWide(_ version: UInt32) -> Bool { version >= 4 }

    mutating func readNLMRange(version: UInt32) throws -> (UInt64, UInt64) {
        if Self.nlmWide(version) { return (try readXDRUInt64(), try readXDRUInt64()) }
        return (UInt64(try readXDRUInt32()), UInt64(try readXDRUInt32()))
    }

    mutating func writeNLMRange(_ offset: UInt64, _ length: UInt64, version: UInt32) {
        if Self.nlmWide(version) {
            writeXDRUInt64(offset)
            writeXDRUInt64(length)
        } else {
            // Versions 1 and 3 cannot say more: a range past 4 GiB reaches the end of the file.
            writeXDRUInt32(UInt32(truncatingIfNeeded: min(offset, UInt64(UInt32.max))))
            writeXDRUInt32(length > UInt64(UInt32.max) ? 0 : UInt32(length))
        }
    }

    mutating func readNLMNetobj() throws -> [UInt8] {
        Array(try readXDRVariableOpaque(limit: NLM.maxNetobj).readableBytesView)
    }

    package mutating func readNLMLock(version: UInt32) throws -> NLMLock {
        let caller = try readXDRString(limit: NLM.maxString)
        let fh = try readNLMNetobj(), oh = try readNLMNetobj()
        let svid = try readXDRInt32()
        let (offset, length) = try readNLMRange(version: version)
        return NLMLock(callerName: caller, fileHandle: fh, ownerHandle: oh, svid: svid, offset: offset, length: length)
    }

    package mutating func writeNLMLock(_ l: NLMLock, version: UInt32) {
        writeXDRString(l.callerName)
        writeXDRVariableOpaque(bytes: l.fileHandle)
        writeXDRVariableOpaque(bytes: l.ownerHandle)
        writeXDRInt32(l.svid)
        writeNLMRange(l.offset, l.length, version: version)
    }

    /// The arguments of `procedure` (TEST, LOCK, CANCEL, UNLOCK or one of their _MSG forms).
    package mutating func readNLMLockArguments(_ procedure: NLM.Procedure, version: UInt32) throws -> NLMLockArguments {
        let cookie = try readNLMNetobj()
        switch procedure {
        case .test, .testMessage:
            let exclusive = try readXDRBool()
            return NLMLockArguments(cookie: cookie, exclusive: exclusive, lock: try readNLMLock(version: version))
        case .lock, .lockMessage, .nmLock:
            let block = try readXDRBool(), exclusive = try readXDRBool()
            let lock = try readNLMLock(version: version)
            return NLMLockArguments(cookie: cookie, block: block, exclusive: exclusive, lock: lock,
                                    reclaim: try readXDRBool(), state: try readXDRInt32())
        case .cancel, .cancelMessage:
            let block = try readXDRBool(), exclusive = try readXDRBool()
            return NLMLockArguments(cookie: cookie, block: block, exclusive: exclusive, lock: try readNLMLock(version: version))
        default:
            return NLMLockArguments(cookie: cookie, lock: try readNLMLock(version: version))
        }
    }

    package mutating func writeNLMLockArguments(_ a: NLMLockArguments, _ procedure: NLM.Procedure, version: UInt32) {
        writeXDRVariableOpaque(bytes: a.cookie)
        switch procedure {
        case .test, .testMessage:
            writeXDRBool(a.exclusive)
            writeNLMLock(a.lock, version: version)
        case .lock, .lockMessage, .nmLock:
            writeXDRBool(a.block)
            writeXDRBool(a.exclusive)
            writeNLMLock(a.lock, version: version)
            writeXDRBool(a.reclaim)
            writeXDRInt32(a.state)
        case .cancel, .cancelMessage:
            writeXDRBool(a.block)
            writeXDRBool(a.exclusive)
            writeNLMLock(a.lock, version: version)
        default:
            writeNLMLock(a.lock, version: version)
        }
    }

    /// nlm_res / nlm4_res: the cookie and a status.
    package mutating func writeNLMResult(cookie: [UInt8], _ status: NLM.Status) {
        writeXDRVariableOpaque(bytes: cookie)
        writeXDRUInt32(status.rawValue)
    }

    package mutating func readNLMResult() throws -> (cookie: [UInt8], status: NLM.Status) {
        let cookie = try readNLMNetobj()
        let raw = try readXDRUInt32()
        guard let status = NLM.Status(rawValue: raw) else { throw XDRError(.invalidEnum, "nlm4_stats \(raw)") }
        return (cookie, status)
    }

    /// nlm_testres / nlm4_testres: granted, or denied with the holder in the way.
    package mutating func writeNLMTestResult(cookie: [UInt8], _ status: NLM.Status, holder: NLMHolder?, version: UInt32) {
        writeNLMResult(cookie: cookie, status)
        guard status == .denied, let holder else { return }
        writeXDRBool(holder.exclusive)
        writeXDRInt32(holder.svid)
        writeXDRVariableOpaque(bytes: holder.ownerHandle)
        writeNLMRange(holder.offset, holder.length, version: version)
    }

    package mutating func readNLMTestResult(version: UInt32) throws -> (cookie: [UInt8], status: NLM.Status, holder: NLMHolder?) {
        let (cookie, status) = try readNLMResult()
        guard status == .denied else { return (cookie, status, nil) }
        let exclusive = try readXDRBool(), svid = try readXDRInt32(), oh = try readNLMNetobj()
        let (offset, length) = try readNLMRange(version: version)
        return (cookie, status, NLMHolder(exclusive: exclusive, svid: svid, ownerHandle: oh, offset: offset, length: length))
    }
}

/// nlm_share / nlm4_share with the rest of nlm_shareargs: a DOS-style share reservation
/// (SHARE, UNSHARE), which old PC clients take when they open a file.
package struct NLMShareArguments: Hashable, Sendable {
    package var cookie: [UInt8]
    package var callerName: String
    package var fileHandle: [UInt8]
    package var ownerHandle: [UInt8]
    /// fsh4_mode: what others may not do (bit 0 read, bit 1 write).
    package var denyMode: UInt32
    /// fsh4_access: what this opener does (bit 0 read, bit 1 write).
    package var access: UInt32
    package var reclaim: Bool

    package init(cookie: [UInt8], callerName: String, fileHandle: [UInt8], ownerHandle: [UInt8],
                 denyMode: UInt32, access: UInt32, reclaim: Bool = false) {
        self.cookie = cookie
        self.callerName = callerName
        self.fileHandle = fileHandle
        self.ownerHandle = ownerHandle
        self.denyMode = denyMode
        self.access = access
        self.reclaim = reclaim
    }
}

extension NLM.Status {
    /// What a client of `version` understands: versions 1 and 3 know only the first five
    /// statuses (knfsd's cast_to_nlm: a deadlock is a denial, everything else "no locks").
    package func cast(toVersion version: UInt32) -> NLM.Status {
        guard version < 4 else { return self }
        switch self {
        case .granted, .denied, .deniedNoLocks, .blocked, .deniedGracePeriod: return self
        case .deadlock: return .denied
        default: return .deniedNoLocks
        }
    }
}

extension ByteBuffer {
    package mutating func readNLMShareArguments() throws -> NLMShareArguments {
        let cookie = try readNLMNetobj()
        let caller = try readXDRString(limit: NLM.maxString)
        let fh = try readNLMNetobj(), oh = try readNLMNetobj()
        let mode = try readXDRUInt32(), access = try readXDRUInt32()
        guard mode <= 3, access <= 3 else { throw XDRError(.invalidEnum, "fsh_mode \(mode) fsh_access \(access)") }
        return NLMShareArguments(cookie: cookie, callerName: caller, fileHandle: fh, ownerHandle: oh,
                                 denyMode: mode, access: access, reclaim: try readXDRBool())
    }

    package mutating func writeNLMShareArguments(_ a: NLMShareArguments) {
        writeXDRVariableOpaque(bytes: a.cookie)
        writeXDRString(a.callerName)
        writeXDRVariableOpaque(bytes: a.fileHandle)
        writeXDRVariableOpaque(bytes: a.ownerHandle)
        writeXDRUInt32(a.denyMode)
        writeXDRUInt32(a.access)
        writeXDRBool(a.reclaim)
    }

    /// nlm_shareres / nlm4_shareres.
    package mutating func writeNLMShareResult(cookie: [UInt8], _ status: NLM.Status, sequence: Int32 = 0) {
        writeNLMResult(cookie: cookie, status)
        writeXDRInt32(sequence)
    }

    /// nlm_notify / nlm4_notify (FREE_ALL): the host whose locks all go, and its NSM state.
    package mutating func readNLMNotify() throws -> (name: String, state: Int32) {
        (try readXDRString(limit: NLM.maxString), try readXDRInt32())
    }

    package mutating func writeNLMNotify(name: String, state: Int32) {
        writeXDRString(name)
        writeXDRInt32(state)
    }
}
