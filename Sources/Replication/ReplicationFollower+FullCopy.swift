import FileStore
import Glibc
import Journal
import NIOCore

/// A full copy being received: its staging directory, and the thread its file work runs on.
struct FullCopyReceiving: Sendable {
    let staging: FullCopyStaging
    let thread: FullCopyThread

    func close() {
        staging.close()
        thread.close()
    }
}

extension ReplicationFollower {
    /// FULL_COPY_BEGIN: a fresh staging directory (an earlier, unfinished one is removed).
    func startFullCopy(sequence: UInt64, highestFileID: UInt64, files: UInt64, bytes: UInt64) async throws -> FullCopyReceiving {
        let directory = writer.directory
        let thread = FullCopyThread()
        let staging: FullCopyStaging
        do {
            staging = try await fullCopyStep(thread) { try FullCopyStaging(directory: directory, sequence: sequence, highestFileID: highestFileID) }
        } catch {
            thread.close()
            throw error
        }
        update {
            $0.fullCopy = FullCopyProgress(sequence: sequence, files: files, bytes: bytes)
            $0.inSync = false
        }
        logger.notice("replication.full_copy receiving", metadata: [
            "replication.sequence": "\(sequence)", "replication.files": "\(files)", "replication.bytes": "\(bytes)",
        ])
        return FullCopyReceiving(staging: staging, thread: thread)
    }

    /// FULL_COPY_ENTRY and FULL_COPY_DATA: written into the staging directory.
    func receive(_ message: ReplicationMessage, into receiving: FullCopyReceiving) async throws {
        let staging = receiving.staging
        let (entries, bytes) = try await fullCopyStep(receiving.thread) { () throws -> (UInt64, UInt64) in
            switch message {
            case .fullCopyEntry(let entry): try staging.take(entry)
            case .fullCopyData(let data):
                try staging.write(data)
                if let ms = Failpoint.fullCopyDelayMilliseconds { usleep(UInt32(ms) * 1000) }
            default: break
            }
            return (staging.entries, staging.bytes)
        }
        update {
            $0.fullCopy?.entriesDone = entries
            $0.fullCopy?.bytesDone = bytes
        }
    }

    /// FULL_COPY_END: the staging directory made durable and swapped in (the served trees
    /// noted as behind first, so a takeover, or the next start, rebuilds them from the new
    /// copy), the journal emptied and going on after the copy's sequence. Returns it.
    func installFullCopy(_ receiving: FullCopyReceiving, entries: UInt64) async throws -> UInt64 {
        let (writer, willAppend, checkpointer, staging) = (self.writer, self.willAppend, self.checkpointer, receiving.staging)
        let started = ContinuousClock.now
        try await fullCopyStep(receiving.thread) {
            try willAppend()
            try staging.finish(entries: entries)
            let hold = checkpointer?.hold()
            defer { hold?.release() }
            try writer.replaceHistory(after: staging.sequence) {
                try staging.markReady()
                try writer.directory.installFullCopyIfReady()
            }
        }
        update {
            $0.fullCopy = nil
            $0.fullCopyNeeded = false
            $0.fullCopies += 1
            $0.appended = staging.sequence
            $0.acknowledged = staging.sequence
        }
        logger.notice("replication.full_copy installed", metadata: [
            "replication.sequence": "\(staging.sequence)", "replication.entries": "\(staging.entries)",
            "replication.bytes": "\(staging.bytes)", "replication.seconds": "\(ContinuousClock.now - started)",
        ])
        return staging.sequence
    }

    /// One step of a full copy on its thread; a copy that does not hold together is the
    /// active's fault (`badFullCopy`: logged, the connection dropped, nothing installed).
    private func fullCopyStep<T: Sendable>(_ thread: FullCopyThread, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await thread.run(body)
        } catch let error as JournalError where error.code == .badFullCopy {
            logger.error("replication.full_copy refused; connection dropped", metadata: ["replication.error": "\(error.detail)"])
            throw ReplicationError(.badFullCopy, error.detail)
        } catch let error as JournalError {
            throw ReplicationError(.journal, "full copy: \(error)")
        }
    }
}
