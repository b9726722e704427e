import FileStore

/// The file stores' `ChangeRecorder`: changes go to the journal writer; durability errors
/// come back as the store's own error type (NFS3ERR_NOSPC or NFS3ERR_IO to clients).
public struct JournalRecorder: ChangeRecorder {
    public let writer: JournalWriter

    public init(writer: JournalWriter) {
        self.writer = writer
    }

    public func record(_ change: FileChange, exportID: UInt64) -> UInt64 {
        writer.append(exportID: exportID, change)
    }

    public func makeDurable(through sequence: UInt64) throws {
        do {
            try writer.waitDurable(sequence)
        } catch let e as JournalError {
            throw StoreError(e.code == .noSpace ? .noSpace : .io, operation: e.description)
        }
    }

    public var lastRecorded: UInt64 { writer.lastAppended }
}
