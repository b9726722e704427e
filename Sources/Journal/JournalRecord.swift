import FileStore
import NIOCore
import XDR

// The journal's records, in XDR (RFC 4506): one codec, the project's own, already tested.
//
//   enum record_type { WRITE = 1, SETATTR = 2, CREATE = 3, REMOVE = 4, RENAME = 5, LINK = 6,
//                      CHECKPOINT = 7, REPLY = 8 /* format version 3 on */ };
//   struct record {
//       unsigned hyper sequence;      /* strictly increasing, never reused */
//       unsigned hyper export;        /* the export id */
//       unsigned hyper epoch;         /* format version 2 on: the HA epoch of the active that
//                                        appended it; 0 outside a cluster (version 1: absent, 0) */
//       record_type type;
//       union switch (record_type type) { ... } body;
//   };
//
// Every change names the files it touches both by file id (resolved through the identity index
// when replaying onto the served tree, whose paths may be ahead of the journal after a crash)
// and by path relative to the export root (for the durable copy, whose paths are exactly the
// journal's). Paths are opaque bytes, as file names are. A REPLY record changes no file: it
// carries a duplicate request cache entry, opaque here (`FileChange.reply`):
//
//   case REPLY: opaque entry<MAX_REPLY_ENTRY>;

package enum JournalLimits {
    /// A path in the journal: PATH_MAX.
    package static let maxPath = 4096
    /// Data of one WRITE record: the largest NFS WRITE.
    package static let maxData = 1 << 20
    /// A record on disk: the largest WRITE with its paths and header, rounded up.
    package static let maxRecord = maxData + 2 * maxPath + 1024
    /// The entry of a REPLY record: a duplicate request cache key and a reply of a change
    /// (a few hundred bytes; the cache records none above 4 KiB), with room to spare.
    package static let maxReplyEntry = 8192
}

package typealias JournalChange = FileChange

package struct JournalRecord: Hashable, Sendable {
    package var sequence: UInt64
    package var exportID: UInt64
    /// The HA epoch of the active that appended the record (the leader key's create revision,
    /// `LeaderElection.activeEpoch()`); 0 when no cluster was involved. A reader rejects a record
    /// whose epoch is below the highest already read: a deposed active's late append.
    package var epoch: UInt64
    package var change: JournalChange

    package init(sequence: UInt64, exportID: UInt64, epoch: UInt64 = 0, change: JournalChange) {
        self.sequence = sequence
        self.exportID = exportID
        self.epoch = epoch
        self.change = change
    }
}

extension ByteBuffer {
    mutating func readJournalPath() throws -> [UInt8] {
        Array(try readXDRVariableOpaque(limit: JournalLimits.maxPath).readableBytesView)
    }

    mutating func readJournalTime() throws -> FileTime {
        FileTime(seconds: try readXDRInt64(), nanoseconds: try readXDRUInt32())
    }

    @discardableResult
    mutating func writeJournalTime(_ t: FileTime) -> Int {
        writeXDRInt64(t.seconds) + writeXDRUInt32(t.nanoseconds)
    }

    // enum file_type { REGULAR = 1, DIRECTORY = 2, SYMLINK = 3, FIFO = 4, SOCKET = 5, CHR = 6, BLK = 7 };
    static let fileTypes: [FileType] = [.regular, .directory, .symlink, .fifo, .socket, .characterDevice, .blockDevice]

    static func journalCode(_ t: FileType) -> UInt32 { UInt32(fileTypes.firstIndex(of: t)! + 1) }

    mutating func readJournalFileType() throws -> FileType {
        let code = try readXDRUInt32()
        guard code >= 1, code <= UInt32(Self.fileTypes.count) else { throw XDRError(.invalidEnum, "file type \(code)") }
        return Self.fileTypes[Int(code) - 1]
    }

    /// A record as segments of format `version` hold it (version 1 has no epoch).
    package mutating func readJournalRecord(version: UInt32 = JournalFormat.version) throws -> JournalRecord {
        let sequence = try readXDRUInt64()
        let export = try readXDRUInt64()
        let epoch = version >= 2 ? try readXDRUInt64() : 0
        let type = try readXDRUInt32()
        let change: JournalChange
        switch type {
        case 1:
            change = .write(fileID: try readXDRUInt64(), path: try readJournalPath(), offset: try readXDRUInt64(),
                            data: Array(try readXDRVariableOpaque(limit: JournalLimits.maxData).readableBytesView))
        case 2:
            let id = try readXDRUInt64(), path = try readJournalPath()
            var a = AttributeValues()
            a.mode = try readXDROptional { try $0.readXDRUInt32() }
            a.uid = try readXDROptional { try $0.readXDRUInt32() }
            a.gid = try readXDROptional { try $0.readXDRUInt32() }
            a.size = try readXDROptional { try $0.readXDRUInt64() }
            a.atime = try readXDROptional { try $0.readJournalTime() }
            a.mtime = try readXDROptional { try $0.readJournalTime() }
            change = .setAttributes(fileID: id, path: path, a)
        case 3:
            change = .create(fileID: try readXDRUInt64(), path: try readJournalPath(),
                             type: try readJournalFileType(), mode: try readXDRUInt32(),
                             uid: try readXDRUInt32(), gid: try readXDRUInt32(), rdev: try readXDRUInt64(),
                             target: try readJournalPath())
        case 4:
            change = .remove(fileID: try readXDRUInt64(), path: try readJournalPath(), isDirectory: try readXDRBool())
        case 5:
            change = .rename(fileID: try readXDRUInt64(), from: try readJournalPath(), to: try readJournalPath())
        case 6:
            change = .link(fileID: try readXDRUInt64(), existing: try readJournalPath(), new: try readJournalPath())
        case 7:
            change = .checkpoint(through: try readXDRUInt64())
        case 8 where version >= 3:
            change = .reply(entry: Array(try readXDRVariableOpaque(limit: JournalLimits.maxReplyEntry).readableBytesView))
        default:
            throw XDRError(.invalidEnum, "journal record type \(type)")
        }
        return JournalRecord(sequence: sequence, exportID: export, epoch: epoch, change: change)
    }

    /// A write record with its data taken straight from a received buffer: the same bytes as
    /// `writeJournalRecord` of the `.write` change, without first copying the data into an array.
    @discardableResult
    package mutating func writeJournalWriteRecord(sequence: UInt64, exportID: UInt64, epoch: UInt64 = 0, fileID: UInt64,
                                                 path: [UInt8], offset: UInt64, data: ByteBuffer) -> Int {
        let start = writerIndex
        writeXDRUInt64(sequence)
        writeXDRUInt64(exportID)
        writeXDRUInt64(epoch)
        writeJournalWriteFields(fileID: fileID, path: path, offset: offset)
        writeXDRVariableOpaque(data)
        return writerIndex - start
    }

    mutating func writeJournalWriteFields(fileID: UInt64, path: [UInt8], offset: UInt64) {
        writeXDRUInt32(1); writeXDRUInt64(fileID); writeXDRVariableOpaque(bytes: path); writeXDRUInt64(offset)
    }

    /// A record as segments of format `version` hold it (version 1, for tests of old
    /// segments, drops the epoch).
    @discardableResult
    package mutating func writeJournalRecord(_ r: JournalRecord, version: UInt32 = JournalFormat.version) -> Int {
        let start = writerIndex
        writeXDRUInt64(r.sequence)
        writeXDRUInt64(r.exportID)
        if version >= 2 { writeXDRUInt64(r.epoch) }
        switch r.change {
        case .write(let id, let path, let offset, let data):
            writeJournalWriteFields(fileID: id, path: path, offset: offset)
            writeXDRVariableOpaque(bytes: data)
        case .setAttributes(let id, let path, let a):
            writeXDRUInt32(2); writeXDRUInt64(id); writeXDRVariableOpaque(bytes: path)
            writeXDROptional(a.mode) { $0.writeXDRUInt32($1) }
            writeXDROptional(a.uid) { $0.writeXDRUInt32($1) }
            writeXDROptional(a.gid) { $0.writeXDRUInt32($1) }
            writeXDROptional(a.size) { $0.writeXDRUInt64($1) }
            writeXDROptional(a.atime) { $0.writeJournalTime($1) }
            writeXDROptional(a.mtime) { $0.writeJournalTime($1) }
        case .create(let id, let path, let type, let mode, let uid, let gid, let rdev, let target):
            writeXDRUInt32(3); writeXDRUInt64(id); writeXDRVariableOpaque(bytes: path); writeXDRUInt32(Self.journalCode(type))
            writeXDRUInt32(mode); writeXDRUInt32(uid); writeXDRUInt32(gid); writeXDRUInt64(rdev)
            writeXDRVariableOpaque(bytes: target)
        case .remove(let id, let path, let isDirectory):
            writeXDRUInt32(4); writeXDRUInt64(id); writeXDRVariableOpaque(bytes: path); writeXDRBool(isDirectory)
        case .rename(let id, let from, let to):
            writeXDRUInt32(5); writeXDRUInt64(id); writeXDRVariableOpaque(bytes: from); writeXDRVariableOpaque(bytes: to)
        case .link(let id, let existing, let new):
            writeXDRUInt32(6); writeXDRUInt64(id); writeXDRVariableOpaque(bytes: existing); writeXDRVariableOpaque(bytes: new)
        case .checkpoint(let through):
            writeXDRUInt32(7); writeXDRUInt64(through)
        case .reply(let entry):
            writeXDRUInt32(8); writeXDRVariableOpaque(bytes: entry)
        }
        return writerIndex - start
    }
}
