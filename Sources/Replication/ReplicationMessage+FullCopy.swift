import FileStore
import Journal
import NIOCore
import XDR

// The full copy's messages (protocol version 3; see ReplicationMessage.swift):
//
//   struct full_copy_entry {                 /* FULL_COPY_ENTRY = 8 */
//       unsigned hyper export_id;
//       opaque path<4096>;                   /* plain and relative to the export's copy; empty: its root */
//       unsigned int kind;                   /* FullCopyEntry.Kind: 1 regular, 2 directory, 3 symlink,
//                                               4 hard link, 5 fifo, 6 socket, 7 char, 8 block device */
//       unsigned int mode;                   /* st_mode & 07777 */
//       unsigned int uid;
//       unsigned int gid;
//       unsigned hyper rdev;
//       hyper atime_seconds; unsigned int atime_nseconds;
//       hyper mtime_seconds; unsigned int mtime_nseconds;
//       unsigned hyper size;                 /* a regular file's bytes, which follow in FULL_COPY_DATA */
//       unsigned hyper file_id;              /* user.swiftnfs.id; 0: none */
//       opaque target<4096>;                 /* a symlink's target; a hard link's earlier path */
//   };
extension ReplicationLimits {
    /// A path or a symbolic link's target (PATH_MAX).
    package static let maxPath = 4096
    /// The content of one FULL_COPY_DATA.
    package static let maxFullCopyData = FullCopyReader.chunkBytes
}

extension ByteBuffer {
    mutating func writeFullCopyBody(_ message: ReplicationMessage) {
        switch message {
        case .fullCopyBegin(let sequence, let highestFileID, let files, let bytes):
            for v in [sequence, highestFileID, files, bytes] { writeXDRUInt64(v) }
        case .fullCopyEntry(let e):
            writeXDRUInt64(e.exportID)
            writeXDRVariableOpaque(bytes: e.path)
            for v in [e.kind.rawValue, e.mode, e.uid, e.gid] { writeXDRUInt32(v) }
            writeXDRUInt64(e.rdev)
            for t in [e.atime, e.mtime] {
                writeXDRInt64(t.seconds)
                writeXDRUInt32(t.nanoseconds)
            }
            writeXDRUInt64(e.size)
            writeXDRUInt64(e.fileID)
            writeXDRVariableOpaque(bytes: e.target)
        case .fullCopyData(let data):
            writeXDRVariableOpaque(data)
        case .fullCopyEnd(let entries):
            writeXDRUInt64(entries)
        case .fullCopyDone(let sequence):
            writeXDRUInt64(sequence)
        default:
            preconditionFailure("not a full copy message")
        }
    }

    mutating func readFullCopyEntry() throws -> FullCopyEntry {
        let exportID = try readXDRUInt64()
        let path = Array(try readXDRVariableOpaque(limit: ReplicationLimits.maxPath).readableBytesView)
        let kindValue = try readXDRUInt32()
        guard let kind = FullCopyEntry.Kind(rawValue: kindValue) else {
            throw ReplicationError(.protocolViolation, "full copy entry of unknown kind \(kindValue)")
        }
        let (mode, uid, gid) = (try readXDRUInt32(), try readXDRUInt32(), try readXDRUInt32())
        let rdev = try readXDRUInt64()
        let atime = FileTime(seconds: try readXDRInt64(), nanoseconds: try readXDRUInt32())
        let mtime = FileTime(seconds: try readXDRInt64(), nanoseconds: try readXDRUInt32())
        guard atime.nanoseconds < 1_000_000_000, mtime.nanoseconds < 1_000_000_000 else {
            throw ReplicationError(.protocolViolation, "full copy entry with a time of more than 999999999 ns")
        }
        let (size, fileID) = (try readXDRUInt64(), try readXDRUInt64())
        let target = Array(try readXDRVariableOpaque(limit: ReplicationLimits.maxPath).readableBytesView)
        return FullCopyEntry(exportID: exportID, path: path, kind: kind, mode: mode, uid: uid, gid: gid, rdev: rdev,
                             atime: atime, mtime: mtime, size: size, fileID: fileID, target: target)
    }
}

extension ReplicationMessage {
    static func parseFullCopy(_ kind: Kind, _ body: inout ByteBuffer) throws -> ReplicationMessage {
        switch kind {
        case .fullCopyBegin:
            return .fullCopyBegin(sequence: try body.readXDRUInt64(), highestFileID: try body.readXDRUInt64(),
                                  files: try body.readXDRUInt64(), bytes: try body.readXDRUInt64())
        case .fullCopyEntry:
            return .fullCopyEntry(try body.readFullCopyEntry())
        case .fullCopyData:
            return .fullCopyData(try body.readXDRVariableOpaque(limit: ReplicationLimits.maxFullCopyData))
        case .fullCopyEnd:
            return .fullCopyEnd(entries: try body.readXDRUInt64())
        case .fullCopyDone:
            return .fullCopyDone(sequence: try body.readXDRUInt64())
        default:
            preconditionFailure("not a full copy message")
        }
    }
}
