import FileStore
import NIOCore

/// The file stores' `ChangeRecorder`: changes go to the journal writer; durability errors
/// come back as the store's own error type (NFS3ERR_NOSPC or NFS3ERR_IO to clients).
package struct JournalRecorder: ChangeRecorder {
    package let writer: JournalWriter

    package init(writer: JournalWriter) {
        self.writer = writer
    }

    package func record(_ change: FileChange, exportID: UInt64) -> UInt64 {
        writer.append(exportID: exportID, change)
    }

    package func recordWrite(fileID: UInt64, path: [UInt8], offset: UInt64, data: ByteBuffer, exportID: UInt64) -> UInt64 {
        writer.appendWrite(exportID: exportID, fileID: fileID, path: path, offset: offset, data: data)
    }

    package func waitForRoom(bytes: Int) throws {
        try Self.storeError { try writer.waitForRoom(bytes: bytes) }
    }

    package func reserveRoom(bytes: Int) -> Bool {
        writer.reserveRoom(bytes: bytes)
    }

    package func releaseRoom(bytes: Int) {
        writer.releaseRoom(bytes: bytes)
    }

    package func makeDurable(through sequence: UInt64) throws {
        try Self.storeError { try writer.waitDurable(sequence) }
    }

    package func whenDurable(through sequence: UInt64, _ done: @escaping @Sendable (Error?) -> Void) {
        writer.whenDurable(sequence) { error in done(error.map(Self.storeError)) }
    }

    static func storeError(_ e: JournalError) -> StoreError {
        StoreError(e.code == .noSpace ? .noSpace : .io, operation: e.description)
    }

    static func storeError(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as JournalError {
            throw storeError(e)
        }
    }

    package var lastRecorded: UInt64 { writer.lastAppended }
}
