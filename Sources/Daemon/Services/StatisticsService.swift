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
        for e in exports.current { e.export.store.syncIndex() }
        ServerStatistics.publish(exports)
    }
}
