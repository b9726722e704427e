import NIOPosix

/// A thread of its own for one full copy's file work (a walk of every export's copy, a syncfs
/// of the durable file system that can take seconds on a busy disk): never the shared pool
/// that the journal's appends and acknowledgements of every replication link wait on.
final class FullCopyThread: Sendable {
    private let pool = NIOThreadPool(numberOfThreads: 1)

    init() { pool.start() }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    /// Ends the thread once the work it was given is done.
    func close() { pool.shutdownGracefully { _ in } }
}
