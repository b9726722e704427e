import NIOPosix
import ServiceLifecycle

/// Writes the handle caches' counters to STATE-DIR/statistics every `ServerStatistics.interval`
/// (what `swiftnfsd stats` shows when no server runs), and at the stop, with the identity
/// indexes synced.
struct StatisticsService: Service {
    let exports: LiveExports

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                ServerStatistics.publish(exports)
                try? await Task.sleep(for: ServerStatistics.interval)
            }
        }
        // fsyncs: on a thread of their own, not on the threads Swift's tasks run on.
        let served = exports
        _ = try? await NIOThreadPool.singleton.runIfActive {
            for e in served.current { e.export.store.syncIndex() }
            ServerStatistics.publish(served)
        }
    }
}
